"""Mapped steps (issue 14): one real step instance per item of a list known only at run time."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import pardag
from pardag import EventKind, Recorder, RetryPolicy, RunStatus, StepState
from pardag.clock import VirtualClock
from pardag.progress import LiveProgress, print_summary
from pardag.store import open_store
from tests.support import CRASH_PRELUDE

WAIT = 5.0  # seconds an instance waits for others before giving up (never reached when right)
GRACE = 0.3  # seconds an instance too many gets to show up (always waited out when right)


def mapped(items: list[Any], fn: Any = None, **options: Any) -> pardag.Workflow:
    """list_items -> process (mapped, ``fn`` or item * 10) -> report (their sum)."""
    wf = pardag.Workflow("mapped")
    wf.add("list_items", lambda: items)
    wf.add("process", fn or (lambda item: item * 10), map_over="list_items", **options)
    wf.add("report", lambda process: sum(x for x in process if x is not None))
    return wf


def unmapped(items: list[Any]) -> pardag.Workflow:
    """The same workflow written out by hand: one step per item, known before the run."""
    wf = pardag.Workflow("unmapped")
    wf.add("list_items", lambda: items)
    for k in range(len(items)):
        wf.add(f"p{k}", lambda list_items, k=k: list_items[k] * 10, depends_on=["list_items"])
    names = [f"p{k}" for k in range(len(items))]
    wf.add("process", lambda inputs: [inputs[n] for n in names], depends_on=names)
    wf.add("report", lambda process: sum(process))
    return wf


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.integers(-1000, 1000), max_size=30),
    executor=st.sampled_from(["inline", "threads"]),
    mode=st.sampled_from(["dynamic", "levels", "sequential"]),
    cap=st.one_of(st.none(), st.integers(1, 4)),
    limit=st.integers(0, 3),
)
def test_outputs_equal_the_unmapped_equivalent(
    items: list[int], executor: str, mode: str, cap: int | None, limit: int
) -> None:
    options = {"executor": executor, "mode": mode, "max_concurrency": limit}
    got = mapped(items, map_concurrency=cap).run(**options)  # type: ignore[arg-type]
    want = unmapped(items).run(**options)  # type: ignore[arg-type]
    assert got.status is want.status is RunStatus.SUCCEEDED
    assert got.outputs["process"] == want.outputs["process"] == [x * 10 for x in items]
    assert got.outputs["report"] == want.outputs["report"]
    for k, item in enumerate(items):
        assert got.outputs[f"process[{k}]"] == item * 10
        assert got.steps[f"process[{k}]"].state is StepState.SUCCEEDED


def test_the_decorator_gives_the_item_first_and_other_dependencies_whole() -> None:
    wf = pardag.Workflow("files")
    seen: list[Any] = []

    @wf.step
    def list_files() -> list[str]:
        return ["a.txt", "b.txt", "c.txt"]

    @wf.step
    def config() -> dict[str, str]:
        return {"suffix": "!"}

    @wf.map(over="list_files", max_concurrency=2, retry=2)
    def process(path: str, config: dict[str, str]) -> str:
        seen.append(config)
        return path.upper() + config["suffix"]

    @wf.step
    def report(process: list[str]) -> str:
        return " ".join(process)

    assert wf.steps["process"].depends_on == ("list_files", "config")
    result = wf.run(executor="inline")
    assert result.outputs["process"] == ["A.TXT!", "B.TXT!", "C.TXT!"]
    assert result.outputs["report"] == "A.TXT! B.TXT! C.TXT!"
    assert len(seen) == 3 and all(c is seen[0] for c in seen)  # the same object, whole
    assert result.terminal == ("report",)  # instances are not the workflow's ends


def test_instances_are_steps_with_their_own_ids_and_results() -> None:
    result = mapped(["x", "y", "z"], lambda item: item * 2).run(executor="threads")
    assert [result.outputs[f"process[{k}]"] for k in range(3)] == ["xx", "yy", "zz"]
    for k in range(3):
        step = result.steps[f"process[{k}]"]
        assert (step.id, step.state, step.attempts) == (f"process[{k}]", StepState.SUCCEEDED, 1)
        assert step.started_at is not None and step.finished_at is not None
    assert result.steps["process"].state is StepState.SUCCEEDED
    assert "process[3]" not in result.steps


def test_an_empty_list_succeeds_with_an_empty_list() -> None:
    calls: list[Any] = []
    result = mapped([], calls.append).run(executor="threads")
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["process"] == []
    assert result.outputs["report"] == 0
    assert calls == []


@pytest.mark.parametrize("output", [{"a": 1}, "abc", (1, 2), None])
def test_a_source_that_is_not_a_list_fails_the_map_naming_step_and_type(output: Any) -> None:
    calls: list[Any] = []
    wf = pardag.Workflow("bad")
    wf.add("list_items", lambda: output)
    wf.add("process", calls.append, map_over="list_items", retry=3)
    wf.add("report", lambda process: process)
    result = wf.run(executor="inline", on_failure="continue")
    step = result.steps["process"]
    assert step.state is StepState.FAILED
    assert step.attempts == 1  # the workflow's mistake: not retried
    assert f"whose output is a {type(output).__name__}, not a list" in str(step.error)
    assert "'process' maps over 'list_items'" in str(step.error)
    assert result.steps["report"].state is StepState.SKIPPED
    assert calls == []


def test_a_list_over_max_items_is_refused_before_any_instance_starts() -> None:
    calls: list[Any] = []
    result = mapped(list(range(4)), calls.append, max_items=3).run(executor="inline")
    assert result.status is RunStatus.FAILED
    assert "maps over 4 items of 'list_items', over its max_items of 3" in str(result.error)
    assert calls == []
    assert "process[0]" not in result.steps


def test_the_default_max_items_is_100000() -> None:
    calls: list[Any] = []
    over = mapped(list(range(100_001)), calls.append).run(executor="inline")
    assert "over its max_items of 100,000" in str(over.steps["process"].error)
    assert calls == []
    at = mapped(list(range(100_000)), lambda item: 1).run(executor="inline")
    assert at.status is RunStatus.SUCCEEDED and len(at.outputs["process"]) == 100_000


def test_one_failing_instance_is_retried_alone() -> None:
    attempts: dict[int, int] = {}

    def process(item: int) -> int:
        attempts[item] = attempts.get(item, 0) + 1
        if item == 1 and attempts[item] == 1:
            raise ConnectionError("flaky")
        return item

    policy = RetryPolicy(retries=2, delay=1.0)
    result = mapped([0, 1, 2], process, retry=policy).run(clock=VirtualClock())
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["process"] == [0, 1, 2]
    assert attempts == {0: 1, 1: 2, 2: 1}
    assert [result.steps[f"process[{k}]"].attempts for k in range(3)] == [1, 2, 1]


def test_a_failing_instance_fails_fast_and_cancels_the_others() -> None:
    started: list[int] = []

    def process(item: int) -> int:
        started.append(item)
        if item == 0:
            raise ValueError("bad item 0")
        return item

    result = mapped(list(range(5)), process, map_concurrency=1).run(executor="threads")
    assert result.status is RunStatus.FAILED
    assert started == [0]
    assert result.steps["process[0]"].state is StepState.FAILED
    for k in range(1, 5):
        assert result.steps[f"process[{k}]"].state is StepState.CANCELLED
    mapped_step = result.steps["process"]
    assert mapped_step.state is StepState.FAILED
    assert "1 of 5 instances failed; process[0]: ValueError: bad item 0" in str(mapped_step.error)
    assert result.steps["report"].state is StepState.CANCELLED
    assert "process[0]" in str(result.error)


def test_under_continue_the_other_instances_run_and_the_dependents_are_skipped() -> None:
    def process(item: int) -> int:
        if item == 2:
            raise ValueError("bad item 2")
        return item

    result = mapped(list(range(5)), process).run(executor="threads", on_failure="continue")
    states = [result.steps[f"process[{k}]"].state for k in range(5)]
    assert states == [StepState.SUCCEEDED] * 2 + [StepState.FAILED] + [StepState.SUCCEEDED] * 2
    assert result.steps["process"].state is StepState.FAILED
    assert result.steps["report"].state is StepState.SKIPPED
    assert result.status is RunStatus.FAILED


def count_concurrency(
    cap: int | None, limit: int, items: int, pool: int | None = None
) -> tuple[int, Any]:
    """Run a map of ``items`` on threads; return the most instances seen running at once.

    The first ``target`` instances to run (the expected limit) hold on together, and the one
    that fills the wave gives any instance beyond the limit ``GRACE`` seconds to show up
    (it is already submitted when a cap is not applied), so that too many is seen."""
    lock = threading.Condition()
    now = {"running": 0, "peak": 0, "released": False}
    target = min(x for x in (cap, limit, items, pool) if x)

    def process(item: int) -> int:
        with lock:
            now["running"] += 1
            now["peak"] = max(now["peak"], now["running"])
            lock.notify_all()
            if not now["released"] and now["running"] >= target:
                lock.wait_for(lambda: now["running"] > target, GRACE)
                now["released"] = True
                lock.notify_all()
            lock.wait_for(lambda: now["released"], WAIT)
            now["running"] -= 1
        return item

    wf = mapped(list(range(items)), process, map_concurrency=cap)
    if pool is not None:  # every instance takes one unit of pool "db"
        wf.settings.pools["db"] = pool
        wf.steps["process"].resources = {"db": 1}
    result = wf.run(executor="threads", max_concurrency=limit)
    return int(now["peak"]), result


def test_the_maps_own_max_concurrency_caps_its_instances() -> None:
    peak, result = count_concurrency(cap=3, limit=8, items=12)
    assert result.outputs["process"] == list(range(12))
    assert peak == 3


def test_the_runs_max_concurrency_caps_instances_under_a_wider_map() -> None:
    peak, result = count_concurrency(cap=6, limit=2, items=10)
    assert result.outputs["process"] == list(range(10))
    assert peak == 2


@pytest.mark.parametrize("limit", [1, 2])
def test_levels_mode_runs_the_map_as_one_level(limit: int) -> None:
    recorder = Recorder()
    result = mapped([1, 2, 3]).run(mode="levels", max_concurrency=limit, listeners=[recorder])
    assert result.outputs["report"] == 60
    started = [e.step for e in recorder.of(EventKind.STEP_STARTED)]
    assert started.index("report") > max(started.index(f"process[{k}]") for k in range(3))


def test_instances_are_dispatched_in_item_order() -> None:
    order: list[str] = []
    items = ["d", "a", "c", "b", "e"]
    mapped(items, order.append, map_concurrency=1).run(executor="threads")
    assert order == items
    order.clear()
    mapped(items, order.append).run(executor="inline", max_concurrency=1)
    assert order == items


def test_events_carry_the_instance_ids_and_the_map_ends_after_them() -> None:
    recorder = Recorder()
    mapped([5, 6], lambda item: item).run(executor="threads", listeners=[recorder])
    started = [e.step for e in recorder.of(EventKind.STEP_STARTED)]
    assert {"process[0]", "process[1]"} <= set(started)
    ended = [e.step for e in recorder.of(EventKind.STEP_SUCCEEDED)]
    assert ended.index("process") > max(ended.index("process[0]"), ended.index("process[1]"))
    assert ended.index("report") > ended.index("process")
    (announced,) = [e for e in recorder.of(EventKind.STEP_STARTED) if e.step == "process"]
    assert announced.data["instances"] == 2


def test_a_map_whose_source_failed_is_skipped() -> None:
    wf = pardag.Workflow("upstream")
    wf.add("list_items", lambda: 1 / 0)
    wf.add("process", lambda item: item, map_over="list_items")
    result = wf.run(executor="inline", on_failure="continue")
    assert result.steps["process"].state is StepState.SKIPPED
    assert result.steps["process"].reason == "upstream failed: list_items"


def test_each_run_expands_afresh() -> None:
    items: list[list[int]] = [[1, 2, 3], [4]]
    wf = mapped([], lambda item: item)
    wf.steps["list_items"].fn = lambda: items.pop(0)
    assert wf.run(executor="inline").outputs["process"] == [1, 2, 3]
    second = wf.run(executor="inline")
    assert second.outputs["process"] == [4]
    assert "process[1]" not in second.steps
    assert len(wf.compile().ids) == 3  # the workflow's own graph is left as declared


def problems(*steps: tuple[str, Any, dict[str, Any]]) -> str:
    """The validation message of a workflow with a step ``list_files`` and ``steps``."""
    wf = pardag.Workflow("checked")
    wf.add("list_files", lambda: [1])
    for sid, fn, options in steps:
        wf.add(sid, fn, **options)
    with pytest.raises(pardag.ValidationError) as info:
        wf.validate()
    return str(info.value)


def test_mapping_over_an_unknown_step_is_a_problem_naming_it() -> None:
    message = problems(("process", lambda item: item, {"map_over": "list_file"}))
    assert "process" in message
    assert "maps over unknown step 'list_file'; did you mean 'list_files'?" in message


def test_a_mapped_function_must_take_the_item() -> None:
    message = problems(
        ("process", lambda: 1, {"map_over": "list_files", "depends_on": ["list_files"]}),
        ("other", lambda item: item, {"map_over": "list_files", "map_concurrency": 0}),
    )
    assert "a mapped function takes the item as its first parameter" in message
    assert "map_concurrency must be a positive int, got 0" in message


def test_instances_share_the_maps_pools() -> None:
    peak, result = count_concurrency(cap=None, limit=8, items=10, pool=2)
    assert result.outputs["process"] == list(range(10))
    assert peak == 2


def test_instances_take_the_mapped_steps_place_in_the_ready_order() -> None:
    order: list[str] = []
    wf = pardag.Workflow("ranks")
    wf.add("items", lambda: [0, 1, 2])
    wf.add("low", lambda item: order.append(f"low{item}"), map_over="items")
    wf.add("high", lambda item: order.append(f"high{item}"), map_over="items", priority=5)
    wf.add("middle", lambda items: order.append("middle"), priority=1)
    wf.run(executor="inline", max_concurrency=1)
    assert order == ["high0", "high1", "high2", "middle", "low0", "low1", "low2"]


async def slow_on_one(item: int) -> int:
    if item == 1:
        await asyncio.sleep(3600)
    return item


def test_each_instance_has_its_own_timeout() -> None:
    wf = mapped([0, 1, 2], slow_on_one, timeout=5.0)
    result = wf.run(clock=VirtualClock(), on_failure="continue")
    assert result.steps["process[1]"].state is StepState.FAILED
    assert "timed out after 5s" in str(result.steps["process[1]"].error)
    assert result.steps["process[0]"].state is StepState.SUCCEEDED
    assert result.steps["process[2]"].state is StepState.SUCCEEDED
    assert "process[1]: timed out after 5s" in str(result.steps["process"].error)


def square(item: int) -> int:
    return item * item


def test_instances_run_on_worker_processes() -> None:
    result = mapped([1, 2, 3], square).run(executor="processes")
    assert result.outputs["process"] == [1, 4, 9]


def test_a_map_over_a_mapped_step_maps_its_list() -> None:
    wf = mapped([1, 2, 3])
    wf.add("again", lambda x: x + 1, map_over="process")
    result = wf.run(executor="threads")
    assert result.outputs["again"] == [11, 21, 31]
    assert result.outputs["again[2]"] == 31


def test_a_durable_run_records_each_instance(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    result = mapped([1, 2, 3]).run(store=url)
    assert result.outputs["process"] == [10, 20, 30]
    with open_store(url) as store:
        steps = {s.step_id: s for s in store.get_steps(result.run_id)}
        events = store.get_events(result.run_id)
    for k in range(3):
        assert steps[f"process[{k}]"].state == "succeeded"
        assert json.loads(steps[f"process[{k}]"].output_json or "null") == (k + 1) * 10
    assert json.loads(steps["process"].output_json or "null") == [10, 20, 30]
    assert {"process[0]", "process[2]"} <= {e.step for e in events}


CRASHING_MAP = CRASH_PRELUDE + textwrap.dedent(
    """
    wf = pardag.Workflow("crashmap")

    @wf.step
    def list_items():
        mark("list")
        return [0, 1, 2, 3]

    @wf.map(over="list_items", max_concurrency=1)
    def process(item):
        mark(f"item{item}")
        flag = Path(str(LEDGER) + ".crashed")
        if item == 2 and not flag.exists():
            flag.touch()
            kill_once("crashmap", "process[2]")
        return item * 10

    @wf.step
    def report(process):
        return sum(process)

    if __name__ == "__main__":
        wf.run(store=os.environ["STORE"])
    """
)


def test_kill_9_then_resume_reruns_only_the_instances_that_had_not_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, ledger, url = tmp_path / "crashmap.py", tmp_path / "ledger", str(tmp_path / "r.db")
    script.write_text(CRASHING_MAP)
    monkeypatch.setenv("LEDGER", str(ledger))  # the crashed process's, and the resumed steps'
    monkeypatch.setenv("STORE", url)
    assert subprocess.run([sys.executable, str(script)], timeout=60).returncode == -signal.SIGKILL
    with open_store(url) as store:
        (run,) = store.list_runs(workflow="crashmap")
    result = pardag.resume(run.run_id, store=url)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["process"] == [0, 10, 20, 30]
    assert result.outputs["report"] == 60
    ran = ledger.read_text().split()
    assert ran.count("list") == 1  # the item list is not rebuilt
    assert ran.count("item0") == ran.count("item1") == ran.count("item3") == 1
    assert ran.count("item2") == 2  # running at the kill: run again
    assert result.steps["process[2]"].attempts == 2
    assert result.steps["process[0]"].attempts == 1


def test_the_summary_table_groups_the_instances_under_their_map() -> None:
    def process(item: int) -> int:
        if item in (1, 3):
            raise ValueError(f"bad item {item}")
        return item

    result = mapped(list(range(5)), process).run(executor="inline", on_failure="continue")
    out = io.StringIO()
    print_summary(Console(file=out, width=200), result)
    rows = {line.split()[0]: line for line in out.getvalue().splitlines() if line.strip()}
    assert "3/5 succeeded, 2 failed; 2 of 5 instances failed; process[1]" in rows["process"]
    assert "ValueError: bad item 3" in rows["process[3]"]  # a failed instance keeps its row
    assert "process[0]" not in rows and "process[2]" not in rows


async def sleeps_from_two(item: int) -> int:
    if item >= 2:
        await asyncio.sleep(3600)
    return item


def test_a_run_timeout_cancels_the_instances_and_their_map() -> None:
    result = mapped(list(range(4)), sleeps_from_two).run(timeout=2)  # real time: see below
    assert result.status is RunStatus.TIMED_OUT
    states = [result.steps[f"process[{k}]"].state for k in range(4)]
    assert states == [StepState.SUCCEEDED] * 2 + [StepState.CANCELLED] * 2
    assert result.steps["process"].state is StepState.CANCELLED
    assert result.steps["process"].reason == "run timed out after 2s"
    # (A virtual clock may move on before an async step that returns at once has run.)


def test_an_instance_that_skips_itself_gives_none_at_its_place() -> None:
    def process(item: int) -> int:
        if item == 1:
            raise pardag.StepSkipped("nothing to do")
        return item

    result = mapped([0, 1, 2], process).run(executor="threads")
    assert result.steps["process[1]"].state is StepState.SKIPPED
    assert result.outputs["process"] == [0, None, 2]
    assert result.outputs["report"] == 2


def test_the_live_view_counts_the_instances_once_they_join() -> None:
    view = LiveProgress(Console(file=io.StringIO()), "mapped", total=3)
    mapped([1, 2, 3, 4]).run(executor="inline", listeners=[view])
    assert view.total == 3 + 4
    assert sum(view.counts.values()) == 3 + 4
