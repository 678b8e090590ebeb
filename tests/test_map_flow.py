"""Mapped steps beyond one list (issue 14): zipped lists, failures a map allows, ``when`` per
instance, and chains of maps that run item by item (instance k of ``b`` after ``a[k]``)."""

from __future__ import annotations

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

import pardag
from pardag import EventKind, Recorder, RunStatus, StepState
from pardag.errors import ValidationError
from pardag.store import open_store
from tests.support import CRASH_PRELUDE

WAIT = 5.0  # seconds an instance waits for another (never reached when right)


def problems_of(wf: pardag.Workflow) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        wf.validate()
    return [f"{p.step}: {p.message}" for p in exc.value.problems]


def lists(xs: list[Any], ys: list[Any]) -> pardag.Workflow:
    wf = pardag.Workflow("zipped")
    wf.add("xs", lambda: xs)
    wf.add("ys", lambda: ys)
    return wf


# -- zipped lists -------------------------------------------------------------------------------


def test_a_map_over_two_lists_zips_them_item_by_item() -> None:
    wf = lists([1, 2, 3], [10, 20, 30])
    wf.add("offset", lambda: 100)

    @wf.map(over=["xs", "ys"])
    def add(x: int, y: int, offset: int) -> int:
        return x + y + offset

    result = wf.run(executor="threads")
    assert result.outputs["add"] == [111, 122, 133]
    assert result.outputs["add[1]"] == 122


def test_lists_of_different_lengths_fail_the_map_naming_each() -> None:
    wf = lists([1, 2, 3], [10, 20])
    wf.add("add", lambda x, y: x + y, map_over=["xs", "ys"])
    result = wf.run(executor="inline")
    assert result.status is RunStatus.FAILED
    message = str(result.steps["add"].error)
    assert "zips lists of different lengths ('xs' has 3, 'ys' has 2)" in message
    assert not any(sid.startswith("add[") for sid in result.steps)


def test_a_zipped_shell_step_reads_its_items_as_a_list(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "steps:\n"
        "  names:\n    language: python\n    code: |\n      def run(inputs):\n"
        "          return ['a', 'b']\n"
        "  sizes:\n    language: python\n    code: |\n      def run(inputs):\n"
        "          return [1, 2]\n"
        "  show:\n    kind: shell\n    for_each: [names, '{{ steps.sizes.output }}']\n"
        "    command: echo {{ item[0] }}={{ item[1] }}\n"
    )
    result = pardag.load(path).run()
    assert [r["stdout"] for r in result.outputs["show"]] == ["a=1\n", "b=2\n"]


def test_a_zipped_function_must_take_one_item_per_list() -> None:
    wf = lists([1], [2])
    wf.add("add", lambda x: x, map_over=["xs", "ys"])
    wf.add("twice", lambda x, y: x, map_over=["xs", "xs"])
    found = problems_of(wf)
    assert "add: a mapped function takes its 2 items as its first parameters; add them" in found
    assert any(p.startswith("twice: map_over=('xs', 'xs') must name one step") for p in found)


# -- failures a map allows ----------------------------------------------------------------------


def failing(bad: set[int]) -> Any:
    def process(item: int) -> int:
        if item in bad:
            raise ValueError(f"bad item {item}")
        return item * 10

    return process


def mapped(items: list[int], fn: Any, **options: Any) -> pardag.Workflow:
    wf = pardag.Workflow("allowing")
    wf.add("list_items", lambda: items)
    wf.add("process", fn, map_over="list_items", **options)
    wf.add("report", lambda process: process)
    return wf


def test_failures_within_allow_failures_leave_none_at_their_places() -> None:
    wf = mapped(list(range(5)), failing({1, 3}), allow_failures=2)
    result = wf.run(executor="threads")  # fail_fast: allowed failures stop nothing
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["report"] == [0, None, 20, None, 40]
    process = result.steps["process"]
    assert process.state is StepState.SUCCEEDED
    assert process.reason is not None
    assert process.reason.startswith("2 of 5 instances failed (allowed 2): process[1]: ")
    assert "ValueError: bad item 1" in process.reason and "process[3]: " in process.reason
    assert result.steps["process[3]"].state is StepState.FAILED
    assert "bad item 3" in str(result.steps["process[3]"].error)


def test_one_failure_over_the_allowance_fails_fast() -> None:
    started: list[int] = []

    def process(item: int) -> int:
        started.append(item)
        if item < 2:
            raise ValueError(f"bad item {item}")
        return item

    wf = mapped(list(range(5)), process, allow_failures=1, map_concurrency=1)
    result = wf.run(executor="threads")
    assert result.status is RunStatus.FAILED
    assert started == [0, 1]  # the first failure was allowed, the second stopped the run
    assert [result.steps[f"process[{k}]"].state for k in range(2, 5)] == [StepState.CANCELLED] * 3
    assert "bad item 1" in str(result.error)


def test_over_the_allowance_under_continue_the_map_fails_naming_the_first() -> None:
    wf = mapped(list(range(4)), failing({0, 2, 3}), allow_failures=0.5)  # 2 of 4 may fail
    result = wf.run(executor="threads", on_failure="continue")
    assert result.steps["process"].state is StepState.FAILED
    assert "3 of 4 instances failed; process[0]: ValueError: bad item 0" in str(
        result.steps["process"].error
    )
    assert result.steps["report"].state is StepState.SKIPPED
    assert result.status is RunStatus.FAILED


def test_a_fraction_rounds_down_and_a_map_that_is_not_critical_allows_every_failure() -> None:
    half = mapped(list(range(4)), failing({0, 2}), allow_failures=0.5).run(executor="inline")
    assert half.outputs["report"] == [None, 10, None, 30]
    everything = mapped([1, 2], failing({1, 2}), critical=False).run(executor="inline")
    assert everything.status is RunStatus.SUCCEEDED
    assert everything.outputs["report"] == [None, None]
    none_allowed = mapped([1, 2], failing({1}), allow_failures=0).run(executor="inline")
    assert none_allowed.status is RunStatus.FAILED


def test_allow_failures_is_checked() -> None:
    wf = pardag.Workflow("bad")
    wf.add("list_items", lambda: [1])
    wf.add("plain", lambda: 1, allow_failures=1)
    wf.add("negative", lambda x: x, map_over="list_items", allow_failures=-1)
    wf.add("fraction", lambda x: x, map_over="list_items", allow_failures=1.5)
    found = problems_of(wf)
    assert "plain: allow_failures applies to a mapped step only; map it or remove it" in found
    for step in ("negative", "fraction"):
        assert any(p.startswith(f"{step}: allow_failures=") for p in found), found


def test_allow_failures_in_a_steps_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "steps:\n"
        "  names:\n    language: python\n    code: |\n      def run(inputs):\n"
        "          return ['a', 'b', 'c']\n"
        "  check:\n    kind: shell\n    for_each: names\n    allow_failures: 1\n"
        "    command: test {{ item }} != b && echo {{ item }}\n"
    )
    result = pardag.load(path).run()
    assert result.status is RunStatus.SUCCEEDED
    outputs = result.outputs["check"]
    assert outputs[1] is None and [outputs[0]["stdout"], outputs[2]["stdout"]] == ["a\n", "c\n"]
    assert result.steps["check"].reason is not None
    assert "check[1]" in result.steps["check"].reason


# -- when, per instance -------------------------------------------------------------------------


def test_when_decides_for_each_instance_reading_its_item() -> None:
    calls: list[int] = []

    def process(item: int) -> int:
        calls.append(item)
        return item

    result = mapped(list(range(5)), process, when="item % 2 == 0 and item_index < 4").run(
        executor="inline"
    )
    assert sorted(calls) == [0, 2]
    assert result.outputs["report"] == [0, None, 2, None, None]
    assert result.steps["process[1]"].state is StepState.SKIPPED
    assert result.steps["process[1]"].reason == "condition false"
    assert result.steps["process"].state is StepState.SUCCEEDED


def test_a_when_function_is_called_like_the_mapped_function() -> None:
    wf = pardag.Workflow("when")
    wf.add("list_items", lambda: [1, 2, 3])
    wf.add("limit", lambda: 2)
    wf.add("process", lambda x, limit: x, map_over="list_items", when=lambda x, limit: x <= limit)
    result = wf.run(executor="inline")
    assert result.outputs["process"] == [1, 2, None]


def test_a_mapped_shell_steps_when_reads_item(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "steps:\n"
        "  names:\n    language: python\n    code: |\n      def run(inputs):\n"
        "          return ['a', 'b']\n"
        "  echo:\n    kind: shell\n    for_each: names\n    when: \"item != 'a'\"\n"
        "    command: echo {{ item }}\n"
    )
    result = pardag.load(path).run()
    assert result.outputs["echo"][0] is None
    assert result.outputs["echo"][1]["stdout"] == "b\n"


# -- a map over a mapped step: item by item -----------------------------------------------------


def chain(a: Any, b: Any, items: list[int], **a_options: Any) -> pardag.Workflow:
    wf = pardag.Workflow("chain")
    wf.add("src", lambda: items)
    wf.add("a", a, map_over="src", **a_options)
    wf.add("b", b, map_over="a")
    wf.add("report", lambda b: b)
    return wf


def test_b_of_an_item_runs_as_soon_as_a_of_that_item_ends() -> None:
    """a[1] goes on only once b[0] has run: a map that waited for all of ``a`` would never
    let it (it would fail after WAIT)."""
    b0_done = threading.Event()

    def a(item: int) -> int:
        if item == 1:
            assert b0_done.wait(WAIT), "b[0] did not run while a[1] was running"
        return item * 10

    def b(x: int) -> int:
        if x == 0:
            b0_done.set()
        return x + 1

    recorder = Recorder()
    result = chain(a, b, [0, 1]).run(executor="threads", max_concurrency=4, listeners=[recorder])
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert result.outputs["b"] == [1, 11]
    assert result.outputs["report"] == [1, 11]
    ends = [e.step for e in recorder.events if e.kind is EventKind.STEP_SUCCEEDED]
    assert ends.index("b[0]") < ends.index("a[1]") < ends.index("a")
    assert ends.index("a") < ends.index("b")


def test_levels_mode_keeps_the_whole_of_a_before_b() -> None:
    recorder = Recorder()
    result = chain(lambda x: x, lambda x: x + 1, [0, 1, 2]).run(
        executor="threads", mode="levels", listeners=[recorder]
    )
    assert result.outputs["b"] == [1, 2, 3]
    order = [e.step for e in recorder.events if e.kind is EventKind.STEP_STARTED]
    assert max(order.index(f"a[{k}]") for k in range(3)) < min(
        order.index(f"b[{k}]") for k in range(3)
    )


def test_a_failed_item_skips_its_own_b_only_when_allowed() -> None:
    result = chain(failing({1}), lambda x: x + 1, [0, 1, 2], allow_failures=1).run(
        executor="threads"
    )
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["a"] == [0, None, 20]
    assert result.outputs["b"] == [1, None, 21]
    assert result.steps["b[1]"].state is StepState.SKIPPED
    assert result.steps["b[1]"].reason == "upstream failed: a[1]"


def test_when_a_fails_under_continue_b_is_skipped_though_some_of_it_ran() -> None:
    result = chain(failing({2}), lambda x: x + 1, [0, 1, 2]).run(
        executor="threads", on_failure="continue"
    )
    assert result.steps["a"].state is StepState.FAILED
    assert result.steps["b"].state is StepState.SKIPPED
    assert result.steps["b"].reason == "upstream failed: a"
    assert result.steps["b[2]"].state is StepState.SKIPPED
    assert result.steps["report"].state is StepState.SKIPPED
    assert result.status is RunStatus.FAILED


class ReleaseOnFailure(Recorder):
    """Lets a waiting step end once a step's failure is announced (the run is stopping)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def on_event(self, event: pardag.Event) -> None:
        if event.kind is EventKind.STEP_FAILED:
            self.release.set()


def test_under_fail_fast_a_failed_item_cancels_the_bs_still_waiting() -> None:
    listener = ReleaseOnFailure()

    def a(item: int) -> int:
        if item == 0:
            raise ValueError("bad item 0")
        listener.release.wait(WAIT)  # still running when a[0] fails
        return item

    result = chain(a, lambda x: x, [0, 1]).run(
        executor="threads", max_concurrency=4, listeners=[listener]
    )
    assert result.status is RunStatus.FAILED
    assert result.steps["b[0]"].state is StepState.SKIPPED  # its own a failed
    assert result.steps["b[1]"].state is StepState.CANCELLED
    assert result.steps["b"].state is StepState.CANCELLED


def test_a_chain_of_three_maps_flows_item_by_item_in_a_durable_run(tmp_path: Path) -> None:
    wf = chain(lambda x: x * 10, lambda x: x + 1, [1, 2, 3])
    wf.add("c", lambda x: -x, map_over="b")
    url = str(tmp_path / "runs.db")
    result = wf.run(store=url, executor="threads")
    assert result.outputs["c"] == [-11, -21, -31]
    with open_store(url) as store:
        recorded = {s.step_id: s for s in store.get_steps(result.run_id)}
    assert {f"{m}[{k}]" for m in "abc" for k in range(3)} <= set(recorded)
    assert all(recorded[f"c[{k}]"].state == "succeeded" for k in range(3))
    assert recorded["c"].state == "succeeded"


def test_a_map_over_a_mapped_step_with_another_upstream_waits_for_it() -> None:
    """``b`` also needs ``slow``: it cannot start early, and maps the finished list then."""
    gate = threading.Event()
    wf = pardag.Workflow("waits")
    wf.add("src", lambda: [1, 2])
    wf.add("a", lambda x: x, map_over="src")
    wf.add("slow", lambda: gate.wait(WAIT) and 5)
    wf.add("b", lambda x, slow: x + slow, map_over="a")
    recorder = Recorder()
    threading.Timer(0.05, gate.set).start()
    result = wf.run(executor="threads", max_concurrency=4, listeners=[recorder])
    assert result.outputs["b"] == [6, 7]
    order = [(e.kind, e.step) for e in recorder.events]
    assert order.index((EventKind.STEP_SUCCEEDED, "slow")) < order.index(
        (EventKind.STEP_STARTED, "b[0]")
    )


CRASHING_CHAIN = CRASH_PRELUDE + textwrap.dedent(
    """
    wf = pardag.Workflow("crashchain")

    @wf.step
    def list_items():
        mark("list")
        return [0, 1, 2, 3]

    @wf.map(over="list_items", max_concurrency=1)
    def a(item):
        mark(f"a{item}")
        flag = Path(str(LEDGER) + ".crashed")
        if item == 2 and not flag.exists():
            flag.touch()
            kill_once("crashchain", "b[1]", "succeeded")  # b[1] ran while a[2] runs: then the kill
        return item * 10

    @wf.map(over="a")
    def b(x):
        mark(f"b{x // 10}")
        return x + 1

    if __name__ == "__main__":
        wf.run(store=os.environ["STORE"], executor="threads")
    """
)


def test_kill_9_mid_chain_then_resume_runs_each_item_of_each_map_once_more_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, ledger, url = tmp_path / "crashchain.py", tmp_path / "ledger", str(tmp_path / "r.db")
    script.write_text(CRASHING_CHAIN)
    monkeypatch.setenv("LEDGER", str(ledger))
    monkeypatch.setenv("STORE", url)
    assert subprocess.run([sys.executable, str(script)], timeout=60).returncode == -signal.SIGKILL
    with open_store(url) as store:
        (run,) = store.list_runs(workflow="crashchain")
    result = pardag.resume(run.run_id, store=url)
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert result.outputs["b"] == [1, 11, 21, 31]
    ran = ledger.read_text().split()
    assert ran.count("list") == 1
    assert [ran.count(f"b{k}") for k in range(4)] == [1, 1, 1, 1]  # b[0], b[1] kept
    assert [ran.count(f"a{k}") for k in range(4)] == [1, 1, 2, 1]  # a[2] was running


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pairs=st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-9, 9)), max_size=20),
    executor=st.sampled_from(["inline", "threads"]),
    mode=st.sampled_from(["dynamic", "levels", "sequential"]),
    cap=st.one_of(st.none(), st.integers(1, 3)),
    limit=st.integers(0, 3),
)
def test_chains_and_zips_equal_the_loops_they_stand_for(
    pairs: list[tuple[int, int]], executor: str, mode: str, cap: int | None, limit: int
) -> None:
    items, others = [x for x, _ in pairs], [y for _, y in pairs]
    wf = pardag.Workflow("property")
    wf.add("xs", lambda: items)
    wf.add("ys", lambda: others)
    wf.add("a", lambda x: x * 3, map_over="xs", map_concurrency=cap)
    wf.add("b", lambda x: x - 1, map_over="a", when="item % 2 == 0")
    wf.add("c", lambda b, y: (b, y), map_over=["b", "ys"], map_concurrency=cap)
    options = {"executor": executor, "mode": mode, "max_concurrency": limit}
    result = wf.run(**options)  # type: ignore[arg-type]
    assert result.status is RunStatus.SUCCEEDED, result.error
    b = [x * 3 - 1 if x * 3 % 2 == 0 else None for x in items]
    assert result.outputs["b"] == b
    assert result.outputs["c"] == [(x, y) for x, y in zip(b, others, strict=True)]


def test_an_instances_events_name_its_mapped_step_as_parent(tmp_path: Path) -> None:
    recorder = Recorder()
    url = str(tmp_path / "runs.db")
    result = chain(lambda x: x, lambda x: x, [5, 6]).run(listeners=[recorder], store=url)
    parents = {e.step: e.data.get("parent") for e in recorder.events if e.step is not None}
    assert parents["a[1]"] == "a" and parents["b[0]"] == "b"
    assert parents["a"] is None and parents["src"] is None
    with open_store(url) as store:
        events = store.get_events(result.run_id)
    stored = {e.step: json.loads(e.data_json).get("parent") for e in events}
    assert stored["b[1]"] == "b"


def test_an_instances_result_names_its_parent_and_item() -> None:
    wf = lists(["a", "b"], [1, 2])
    wf.add("pair", lambda x, y: x * y, map_over=["xs", "ys"])
    wf.add("one", lambda x: x, map_over="xs")
    result = wf.run(executor="inline")
    assert result.steps["pair[1]"].parent == "pair"
    assert result.steps["pair[1]"].item == ["b", 2]
    assert (result.steps["one[0]"].parent, result.steps["one[0]"].item) == ("one", "a")
    assert result.steps["one"].parent is None and result.steps["xs"].item is None


def test_an_instances_item_shows_a_secret_masked() -> None:
    wf = pardag.Workflow("masked", secrets=["TOKEN"])
    wf.add("tokens", lambda: ["plain", "s3cr3t-value"])
    wf.add("use", lambda t: len(t), map_over="tokens")
    result = wf.run(executor="inline", secrets={"TOKEN": "s3cr3t-value"})
    assert result.outputs["use"] == [5, 12]  # the step had the real value
    assert result.steps["use[1]"].item == "***"


# -- code steps mapped from a file --------------------------------------------------------------

CODE_STEPS = """\
steps:
  names:
    language: python
    code: |
      def run(inputs):
          return ["a", "bb"]
  size:
    language: python
    for_each: names
    code: |
      def run(inputs):
          return [inputs["item_index"], len(inputs["item"])]
  by_name:
    language: python
    for_each: names
    executor: threads
    code: |
      def run(item):
          return item * 2
  lua:
    language: lua
    for_each: names
    code: |
      function run(inputs) return inputs.item .. "!" end
"""


def test_code_steps_mapped_in_a_file_get_the_item_as_an_input(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(CODE_STEPS)
    result = pardag.load(path).run()
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert result.outputs["size"] == [[0, 1], [1, 2]]  # on a worker process
    assert result.outputs["by_name"] == ["aa", "bbbb"]
    assert result.outputs["lua"] == ["a!", "bb!"]


def test_a_mapped_code_steps_run_must_take_inputs_or_item(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(CODE_STEPS.replace("def run(item):", "def run(thing):"))
    with pytest.raises(ValidationError) as exc:
        pardag.load(path)
    (problem,) = exc.value.problems
    assert problem.step == "by_name"
    assert "needs (thing)" in problem.message and "'item'" in problem.message
