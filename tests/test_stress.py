"""Large graphs through the whole engine, in every mode, with coroutines and plain functions.

Each step returns its depth (1 + the deepest input), so a single wrong or missing input shows
up as a wrong output somewhere downstream; the expected depths are computed here independently.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pardag import EventKind, Recorder, StepState, Workflow
from tests.support import Peak

pytestmark = pytest.mark.timeout(120)

N = 10_000
MODES = ["dynamic", "levels", "sequential"]


def depth(inputs: Mapping[str, int]) -> int:
    return max(inputs.values(), default=0) + 1


async def depth_async(inputs: Mapping[str, int]) -> int:
    return max(inputs.values(), default=0) + 1


FUNCTIONS = {"plain": depth, "async": depth_async}

Spec = list[tuple[str, list[str]]]


def chain_spec() -> Spec:
    return [("s0", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(1, N)]


def fan_spec() -> Spec:
    middle = [f"m{i}" for i in range(N - 2)]
    return [("root", []), *((m, ["root"]) for m in middle), ("sink", middle)]


def random_spec(seed: int = 20240601) -> Spec:
    rng = random.Random(seed)
    spec: Spec = []
    for i in range(N):
        k = min(i, rng.randint(0, 4))
        deps = sorted(rng.sample(range(max(0, i - 200), i), min(k, i - max(0, i - 200))))
        spec.append((f"n{i}", [f"n{j}" for j in deps]))
    return spec


SPECS: dict[str, Callable[[], Spec]] = {
    "fan": fan_spec,
    "chain": chain_spec,
    "random": random_spec,
}


def expected_depths(spec: Spec) -> dict[str, int]:
    out: dict[str, int] = {}
    for sid, deps in spec:  # declaration order is a topological order here
        out[sid] = max((out[d] for d in deps), default=0) + 1
    return out


def build(spec: Spec, fn: Callable[..., Any]) -> Workflow:
    wf = Workflow("stress")
    for sid, deps in spec:
        wf.add(sid, fn, depends_on=deps)
    return wf


@pytest.mark.slow
@pytest.mark.parametrize("flavor", list(FUNCTIONS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", list(SPECS))
def test_ten_thousand_steps(shape: str, mode: str, flavor: str) -> None:
    spec = SPECS[shape]()
    result = build(spec, FUNCTIONS[flavor]).run(mode=mode)
    assert result.ok, result.error
    assert len(result.outputs) == N
    assert result.outputs == expected_depths(spec)
    assert all(s.state is StepState.SUCCEEDED and s.attempts == 1 for s in result.steps.values())


def started_and_finished(recorder: Recorder) -> tuple[dict[str, int], dict[str, int]]:
    """Position in the event stream where each step started and where it finished."""
    started: dict[str, int] = {}
    finished: dict[str, int] = {}
    for k, event in enumerate(recorder.events):
        if event.step is None:
            continue
        if event.kind is EventKind.STEP_STARTED:
            started[event.step] = k
        elif event.kind is EventKind.STEP_SUCCEEDED:
            finished[event.step] = k
    return started, finished


@pytest.mark.slow
def test_levels_mode_keeps_its_barrier_on_a_large_random_graph() -> None:
    spec = random_spec(seed=7)
    wf = build(spec, depth_async)
    recorder = Recorder()
    assert wf.run(mode="levels", listeners=[recorder]).ok
    started, finished = started_and_finished(recorder)
    level = {sid: d - 1 for sid, d in expected_depths(spec).items()}  # depth == level + 1
    last_end: dict[int, int] = {}
    first_start: dict[int, int] = {}
    for sid, lv in level.items():
        last_end[lv] = max(last_end.get(lv, -1), finished[sid])
        first_start[lv] = min(first_start.get(lv, len(recorder.events)), started[sid])
    for lv in range(1, max(level.values()) + 1):
        assert first_start[lv] > last_end[lv - 1], f"level {lv} started before {lv - 1} ended"


@pytest.mark.slow
def test_sequential_mode_never_overlaps_on_a_large_random_graph() -> None:
    spec = random_spec(seed=11)
    recorder = Recorder()
    assert build(spec, depth).run(mode="sequential", listeners=[recorder]).ok
    running = 0
    for event in recorder.events:
        if event.kind is EventKind.STEP_STARTED:
            running += 1
            assert running == 1
        elif event.kind is EventKind.STEP_SUCCEEDED:
            running -= 1


def test_dependencies_always_finish_before_dependents_start() -> None:
    spec = random_spec(seed=3)
    recorder = Recorder()
    assert build(spec, depth_async).run(max_concurrency=7, listeners=[recorder]).ok
    started, finished = started_and_finished(recorder)
    for sid, deps in spec:
        for dep in deps:
            assert finished[dep] < started[sid]


# -- many steps ready at once -----------------------------------------------------------------


def thousand_ready(fn: Callable[..., Any]) -> Workflow:
    wf = Workflow("wide")
    for i in range(1000):
        wf.add(f"w{i}", fn, depends_on=[])
    return wf


@pytest.mark.parametrize("limit", [0, 10])
def test_thousand_async_steps_ready_at_once(limit: int) -> None:
    peak = Peak()

    async def work() -> int:
        peak.enter()
        await asyncio.sleep(0.01)
        peak.leave()
        return 1

    result = thousand_ready(work).run(max_concurrency=limit)
    assert result.ok
    assert len(result.outputs) == 1000
    if limit == 0:
        assert peak.peak == 1000  # auto means unlimited for coroutines: all start together
    else:
        assert peak.peak == limit


@pytest.mark.parametrize("limit", [0, 10])
def test_thousand_thread_steps_ready_at_once(limit: int) -> None:
    peak = Peak()

    def work() -> int:
        peak.enter()
        time.sleep(0.002)
        peak.leave()
        return 1

    result = thousand_ready(work).run(max_concurrency=limit)
    assert result.ok
    assert len(result.outputs) == 1000
    assert 1 < peak.peak <= (64 if limit == 0 else limit)  # auto is 64 threads


def test_thousand_steps_with_failures_in_continue_mode() -> None:
    """Every tenth step fails; each has one dependent, which must be skipped with the reason."""

    def work(i: int) -> Callable[[], int]:
        def step() -> int:
            if i % 10 == 0:
                raise ValueError(f"step {i}")
            return i

        return step

    wf = Workflow("failures", on_failure="continue")
    for i in range(1000):
        wf.add(f"w{i}", work(i), depends_on=[])
        wf.add(f"d{i}", lambda inputs: sum(inputs.values()), depends_on=[f"w{i}"])
    result = wf.run(max_concurrency=16)
    assert not result.ok
    for i in range(1000):
        dependent = result.steps[f"d{i}"]
        if i % 10 == 0:
            assert result.steps[f"w{i}"].state is StepState.FAILED
            assert dependent.reason == f"upstream failed: w{i}"
        else:
            assert result.outputs[f"d{i}"] == i
