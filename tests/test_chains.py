"""Chains on threads: a worker that finishes a step runs its only dependent itself.

These tests pin what must not change when a thread moves straight on to the next step: each
step runs once, with its inputs, its own attempts and times; a step waiting for a slot is not
overtaken; failures, retries and fail-fast behave as when the loop dispatches every step.
"""

from __future__ import annotations

import itertools
import threading
import time

import pardag
from pardag import RunStatus, StepState


def _chain(n: int, body=None) -> pardag.Workflow:  # type: ignore[no-untyped-def]
    wf = pardag.Workflow("chain")
    wf.add("s0", lambda: 0)
    for k in range(1, n):
        wf.add(f"s{k}", body or (lambda prev: prev + 1), depends_on=[f"s{k - 1}"])
    return wf


def test_a_long_chain_passes_every_output_and_records_every_step() -> None:
    result = _chain(500).run(max_concurrency=2)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["s499"] == 499
    steps = [result.steps[f"s{k}"] for k in range(500)]
    assert all(s.state is StepState.SUCCEEDED and s.attempts == 1 for s in steps)
    for before, after in itertools.pairwise(steps):
        assert before.started_at is not None and after.started_at is not None
        assert after.started_at >= before.started_at


def test_each_link_runs_once_and_on_threads() -> None:
    calls: list[str] = []
    threads: set[int] = set()

    def record(name: str):  # type: ignore[no-untyped-def]
        def step(inputs: dict[str, object]) -> str:
            calls.append(name)
            threads.add(threading.get_ident())
            return name

        return step

    wf = pardag.Workflow("once")
    wf.add("a", record("a"), depends_on=[])
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        wf.add(name, record(name), depends_on=[prev])
    result = wf.run()
    assert calls == list("abcdefghi")
    assert result.outputs["i"] == "i"
    assert threading.get_ident() not in threads


def test_a_step_waiting_for_the_slot_is_not_overtaken() -> None:
    order: list[str] = []
    wf = pardag.Workflow("priority", max_concurrency=1)
    wf.add("a", lambda: order.append("a"), priority=5)
    wf.add("b", lambda a: order.append("b"), depends_on=["a"])
    wf.add("c", lambda: order.append("c"), priority=1)  # ready all along, waiting for the slot
    assert wf.run().status is RunStatus.SUCCEEDED
    assert order == ["a", "c", "b"]


def test_a_failing_link_is_retried_and_the_chain_goes_on() -> None:
    tries = {"n": 0}

    def flaky(prev: int) -> int:
        tries["n"] += 1
        if tries["n"] < 3:
            raise ValueError("not yet")
        return prev + 1

    wf = pardag.Workflow("retry")
    wf.add("s0", lambda: 0)
    wf.add("s1", lambda s0: s0 + 1, depends_on=["s0"])
    wf.add("s2", flaky, depends_on=["s1"], retry=pardag.RetryPolicy(retries=3, delay=0.001))
    wf.add("s3", lambda s2: s2 * 10, depends_on=["s2"])
    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["s3"] == 20
    assert result.steps["s2"].attempts == 3


def test_fail_fast_stops_a_running_chain_and_records_every_link() -> None:
    ran: list[int] = []
    failed = threading.Event()

    def link(k: int):  # type: ignore[no-untyped-def]
        def step() -> int:
            ran.append(k)
            failed.wait(1.0)  # the first link waits for the failure, later ones run after it
            time.sleep(0.01)
            return k

        return step

    def boom() -> None:
        time.sleep(0.05)
        failed.set()
        raise RuntimeError("boom")

    wf = pardag.Workflow("stop")
    for k in range(50):
        wf.add(f"a{k}", link(k), depends_on=[f"a{k - 1}"] if k else [])
    wf.add("b", boom)
    result = wf.run(max_concurrency=2)
    assert result.status is RunStatus.FAILED
    assert result.steps["b"].state is StepState.FAILED
    assert len(ran) == len(set(ran)) < 50  # no link ran twice, and the chain stopped early
    states = [result.steps[f"a{k}"].state for k in range(50)]
    assert all(s.is_final() for s in states)
    assert states[-1] is StepState.CANCELLED
    assert StepState.CANCELLED in states[: len(ran) + 1]


def test_a_failed_link_skips_the_rest_under_continue() -> None:
    def bad(s0: int) -> int:
        raise KeyError("missing")

    wf = pardag.Workflow("continue", on_failure="continue")
    wf.add("s0", lambda: 0)
    wf.add("s1", bad, depends_on=["s0"])
    wf.add("s2", lambda s1: s1, depends_on=["s1"])
    wf.add("other", lambda: "fine")
    result = wf.run()
    assert result.steps["s1"].state is StepState.FAILED
    assert result.steps["s2"].state is StepState.SKIPPED
    assert result.outputs["other"] == "fine"
