"""Runs end to end through ``wf.run()``: data, failures, retries, timeouts, events, Ctrl-C.

No assertion here is about speed. Where a step would run for a minute unless it is stopped,
the test checks that it was stopped (its process is gone, its coroutine saw the cancellation)
and, as a sanity check only, that the run took well under that minute.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import (
    ArgumentError,
    EventKind,
    Recorder,
    RetryPolicy,
    RunStatus,
    RunTimedOut,
    StepFailed,
    StepState,
    StepTimeout,
    Trigger,
    Workflow,
)
from pardag.clock import VirtualClock
from tests import steps
from tests.support import Peak, child_pids, pid_gone

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
SANITY = 30.0
"""Seconds: a run stopped early must end well before a 60 s step would have."""


class Log:
    """A thread-safe list of what happened, in order."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def __iter__(self) -> Any:
        return iter(list(self.items))

    def stuck(self, name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        """An async step that waits a minute and logs ``name`` if it is cancelled."""

        async def step() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.add(name)
                raise

        return step


@pytest.fixture
def spin_pidfile(tmp_path: Path) -> Iterator[Path]:
    """Where a ``steps.spin`` worker writes its pid; the worker is killed at teardown if alive."""
    path = tmp_path / "spin.pid"
    yield path
    if path.exists() and path.read_text().strip():
        pid = int(path.read_text())
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


def warm_up_processes() -> None:
    """Start pardag's fork server (executors.spawning), so a timeout is not eaten by its start."""
    wf = Workflow("warm-up")
    wf.add("pid", steps.pid, executor="processes")
    assert wf.run().ok


# -- data ---------------------------------------------------------------------------------


def test_outputs_pass_by_parameter_name() -> None:
    wf = Workflow("etl")

    @wf.step
    def extract() -> list[int]:
        return [1, 2, 3]

    @wf.step
    def transform(extract: list[int]) -> list[int]:
        return [x * 10 for x in extract]

    @wf.step
    async def load(transform: list[int]) -> int:
        await asyncio.sleep(0)
        return sum(transform)

    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED
    assert result.ok
    assert result.outputs == {"extract": [1, 2, 3], "transform": [10, 20, 30], "load": 60}
    assert result.final_output == 60
    assert result.raise_for_status() is result
    assert result.steps["load"].executor == "async"
    assert result.steps["transform"].executor == "threads"


def test_inputs_mapping_follows_depends_on_order() -> None:
    wf = Workflow("inputs")
    wf.add("a", lambda: 1)
    wf.add("b", lambda: 2)
    wf.add("both", lambda inputs: list(inputs.items()), depends_on=["b", "a"])
    assert wf.run().outputs["both"] == [("b", 2), ("a", 1)]


def test_positional_parameters_follow_depends_on_order() -> None:
    wf = Workflow("positional")
    wf.add("small", lambda: 3)
    wf.add("big", lambda: 10)
    wf.add("diff", lambda x, y: x - y, depends_on=["big", "small"])
    wf.add("rdiff", lambda x, y: x - y, depends_on=["small", "big"])
    outputs = wf.run().outputs
    assert outputs["diff"] == 7
    assert outputs["rdiff"] == -7


def test_function_without_parameters_gets_nothing_but_still_waits() -> None:
    log = Log()
    wf = Workflow("none")

    async def first() -> str:
        await asyncio.sleep(0.05)
        log.add("first")
        return "ignored"

    def after() -> str:
        log.add("after")
        return "ran"

    wf.add("first", first)
    wf.add("after", after, depends_on=["first"])
    result = wf.run()
    assert result.outputs["after"] == "ran"
    assert list(log) == ["first", "after"]


def test_params_reach_steps_that_ask_for_them() -> None:
    wf = Workflow("params")
    wf.add("base", lambda params: params["n"] * 2)
    wf.add("mix", lambda base, inputs, params: (base, dict(inputs), params["tag"]))
    result = wf.run(params={"n": 21, "tag": "x"})
    assert result.outputs["base"] == 42
    assert result.outputs["mix"] == (42, {"base": 42}, "x")
    assert dict(result.params) == {"n": 21, "tag": "x"}
    empty = Workflow("empty-params")
    empty.add("p", lambda params: dict(params))
    assert empty.run().outputs["p"] == {}


def test_dependency_that_did_not_succeed_is_none_and_absent_from_inputs() -> None:
    wf = Workflow("partial", on_failure="continue")
    wf.add("good", lambda: 1)
    wf.add("bad", _raise_value_error, critical=False)
    wf.add(
        "tidy",
        lambda good, bad, inputs: (good, bad, sorted(inputs)),
        trigger=Trigger.ALL_DONE,
    )
    result = wf.run()
    assert result.ok
    assert result.outputs["tidy"] == (1, None, ["good"])


def test_final_output_of_one_and_of_several_terminals() -> None:
    single = Workflow("single")
    single.add("a", lambda: 1)
    single.add("b", lambda a: a + 1)
    assert single.run().final_output == 2

    several = Workflow("several", on_failure="continue")
    several.add("root", lambda: 5)
    several.add("left", lambda root: root * 2)
    several.add("right", lambda root: root * 3)
    several.add("broken", _raise_value_error, depends_on=["root"], critical=False)
    result = several.run()
    assert result.final_output == {"left": 10, "right": 15, "broken": None}
    assert set(result.outputs) == {"root", "left", "right"}  # only steps that succeeded


def test_same_outputs_in_every_mode() -> None:
    def build() -> Workflow:
        wf = Workflow("modes")
        wf.add("a", lambda: 2)
        wf.add("b", lambda a: a + 1)
        wf.add("c", lambda a: a * 10)
        wf.add("d", lambda b, c: b + c)
        wf.add("e", lambda: "solo")
        return wf

    results = {mode: build().run(mode=mode) for mode in ("dynamic", "levels", "sequential")}
    for result in results.values():
        assert result.ok
        assert result.outputs == {"a": 2, "b": 3, "c": 20, "d": 23, "e": "solo"}


def test_step_results_record_attempts_and_times() -> None:
    wf = Workflow("times", on_failure="continue")
    wf.add("a", lambda: 1)
    wf.add("bad", _raise_value_error)
    wf.add("after_bad", lambda bad: bad)
    result = wf.run()
    a = result.steps["a"]
    assert a.state is StepState.SUCCEEDED
    assert a.attempts == 1
    assert a.started_at is not None
    assert a.finished_at is not None
    assert a.started_at <= a.finished_at
    assert result.started_at <= a.started_at <= a.finished_at <= result.finished_at
    skipped = result.steps["after_bad"]
    assert skipped.state is StepState.SKIPPED
    assert skipped.attempts == 0
    assert skipped.started_at is None
    assert skipped.reason == "upstream failed: bad"


# -- errors -------------------------------------------------------------------------------


def _raise_value_error() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("flavor", ["threads", "async"])
def test_error_keeps_the_original_exception_and_traceback(flavor: str) -> None:
    raised: list[BaseException] = []

    def explode_here() -> None:
        exc = ValueError("boom")
        raised.append(exc)
        raise exc

    async def explode_here_async() -> None:
        await asyncio.sleep(0)
        explode_here()

    wf = Workflow("errors")
    wf.add("ok", lambda: 1)
    wf.add("explode", explode_here if flavor == "threads" else explode_here_async)
    result = wf.run()
    assert result.status is RunStatus.FAILED
    error = result.error
    assert isinstance(error, StepFailed)
    assert error.step == "explode"
    assert "'explode'" in str(error)
    assert error.cause is raised[0]
    assert error.__cause__ is raised[0]
    assert "explode_here" in error.traceback
    assert "ValueError: boom" in error.traceback
    assert error.reason == "ValueError: boom"
    step = result.steps["explode"]
    assert step.state is StepState.FAILED
    assert step.error is error
    assert step.reason == "ValueError: boom"
    with pytest.raises(StepFailed) as info:
        result.raise_for_status()
    assert info.value is error


def test_error_from_a_worker_process_keeps_type_message_and_remote_traceback() -> None:
    wf = Workflow("errors")
    wf.add("remote", steps.fail_in_worker, executor="processes")
    result = wf.run()
    error = result.error
    assert isinstance(error, StepFailed)
    assert error.step == "remote"
    assert isinstance(error.cause, ValueError)
    assert str(error.cause) == "raised in a worker process"
    assert "fail_in_worker" in error.traceback


def test_fail_fast_cancels_running_async_steps_and_starts_nothing_new() -> None:
    started = Log()
    cancelled = Log()

    async def slow() -> None:
        started.add("slow")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.add("slow")
            raise

    async def bad() -> None:
        started.add("bad")
        await asyncio.sleep(0.05)
        raise RuntimeError("bad went wrong")

    async def other() -> None:
        started.add("other")

    wf = Workflow("fail-fast", max_concurrency=2)
    wf.add("slow", slow)
    wf.add("bad", bad)
    wf.add("waiting", other)  # no slot while slow and bad run
    wf.add("after_slow", other, depends_on=["slow"])
    t0 = time.monotonic()
    result = wf.run()
    assert time.monotonic() - t0 < SANITY
    assert sorted(started) == ["bad", "slow"]
    assert list(cancelled) == ["slow"]
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, StepFailed)
    assert result.error.step == "bad"
    assert isinstance(result.error.cause, RuntimeError)
    states = {sid: s.state for sid, s in result.steps.items()}
    assert states == {
        "slow": StepState.CANCELLED,
        "bad": StepState.FAILED,
        "waiting": StepState.CANCELLED,
        "after_slow": StepState.CANCELLED,
    }
    assert "bad" in (result.steps["waiting"].reason or "")


def test_continue_mode_runs_independent_branches() -> None:
    log = Log()
    wf = Workflow("continue", on_failure="continue")
    wf.add("bad", _raise_value_error)
    wf.add("after_bad", lambda bad: log.add("after_bad"))
    wf.add("after_after", lambda after_bad: log.add("after_after"))

    async def independent() -> str:
        await asyncio.sleep(0.1)  # still running when bad fails
        log.add("independent")
        return "ok"

    wf.add("independent", independent)
    wf.add("next", lambda independent: log.add("next") or independent * 2)
    result = wf.run()
    assert list(log) == ["independent", "next"]
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, StepFailed)
    assert result.error.step == "bad"
    assert result.outputs["next"] == "okok"
    assert result.steps["after_bad"].reason == "upstream failed: bad"
    assert result.steps["after_after"].reason == "upstream skipped: after_bad"


def test_non_critical_failure_does_not_fail_the_run_or_stop_others() -> None:
    wf = Workflow("optional")  # fail_fast, the default

    async def sibling() -> str:
        await asyncio.sleep(0.1)
        return "done"

    wf.add("optional", _raise_value_error, critical=False)
    wf.add("needs_optional", lambda optional: optional)
    wf.add("sibling", sibling)
    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED
    assert result.error is None
    assert result.outputs == {"sibling": "done"}
    assert result.steps["optional"].state is StepState.FAILED
    assert isinstance(result.steps["optional"].error, StepFailed)
    assert result.steps["needs_optional"].state is StepState.SKIPPED


def test_trigger_given_as_a_string_is_honoured() -> None:
    """``trigger="all_done"`` (how users and files spell it) must act like Trigger.ALL_DONE."""
    wf = Workflow("cleanup", on_failure="continue")
    wf.add("work", _raise_value_error, critical=False)
    wf.add("cleanup", lambda inputs: "cleaned", depends_on=["work"], trigger="all_done")
    wf.add("merge_any", lambda inputs: "any", depends_on=["work", "cleanup"], trigger="any_success")
    result = wf.run()
    assert result.steps["cleanup"].state is StepState.SUCCEEDED
    assert result.steps["merge_any"].state is StepState.SUCCEEDED


# -- retries ------------------------------------------------------------------------------


def flaky(failures: int, exc: type[Exception] = ConnectionError) -> Callable[[], str]:
    """A function that raises ``exc`` on its first ``failures`` calls, then succeeds."""
    calls = [0]

    def step() -> str:
        calls[0] += 1
        if calls[0] <= failures:
            raise exc(f"attempt {calls[0]}")
        return f"ok after {calls[0]}"

    return step


def test_retry_until_success() -> None:
    wf = Workflow("retry")
    wf.add("flaky", flaky(2), retry=RetryPolicy(retries=3, delay=0.01))
    result = wf.run()
    assert result.ok
    assert result.outputs["flaky"] == "ok after 3"
    assert result.steps["flaky"].attempts == 3


def test_retries_exhausted_fail_with_the_last_error() -> None:
    wf = Workflow("retry")
    wf.add("flaky", flaky(10), retry=RetryPolicy(retries=2, delay=0.01))
    result = wf.run()
    assert result.status is RunStatus.FAILED
    step = result.steps["flaky"]
    assert step.attempts == 3
    assert step.state is StepState.FAILED
    assert step.reason == "ConnectionError: attempt 3"


def test_retry_backoff_grows_exponentially() -> None:
    recorder = Recorder()
    wf = Workflow("backoff")
    policy = RetryPolicy(retries=3, delay=0.01, factor=3.0, jitter=0.0)
    wf.add("flaky", flaky(10), retry=policy)
    wf.run(listeners=[recorder])
    retrying = recorder.of(EventKind.STEP_RETRYING)
    assert [e.attempt for e in retrying] == [1, 2, 3]
    assert [e.data["delay"] for e in retrying] == pytest.approx([0.01, 0.03, 0.09])
    started = [e.time for e in recorder.of(EventKind.STEP_STARTED)]
    assert len(started) == 4
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert gaps[2] >= 0.09 * 0.9  # the third backoff was really waited out


def test_retry_on_filters_errors() -> None:
    wf = Workflow("retry-on", on_failure="continue")
    only_connection = RetryPolicy(retries=3, delay=0.01, retry_on=(ConnectionError,))
    wf.add("not_retried", flaky(1, ValueError), retry=only_connection)
    wf.add("retried", flaky(1, ConnectionError), retry=only_connection)
    result = wf.run()
    assert result.steps["not_retried"].attempts == 1
    assert result.steps["not_retried"].state is StepState.FAILED
    assert isinstance(result.steps["not_retried"].error.cause, ValueError)  # type: ignore[union-attr]
    assert result.steps["retried"].attempts == 2
    assert result.steps["retried"].state is StepState.SUCCEEDED


def test_backoff_holds_no_slot() -> None:
    log = Log()
    calls = [0]

    def flaky_logged() -> str:
        calls[0] += 1
        log.add(f"flaky{calls[0]}")
        if calls[0] == 1:
            raise ConnectionError("first")
        return "ok"

    wf = Workflow("slot", max_concurrency=1)
    wf.add("flaky", flaky_logged, retry=RetryPolicy(retries=1, delay=0.5, jitter=0.0))
    wf.add("other", lambda: log.add("other"))
    result = wf.run(clock=VirtualClock())
    assert result.ok
    assert list(log) == ["flaky1", "other", "flaky2"]


def test_timed_out_attempt_is_retried_only_if_timeouts_are_retried() -> None:
    def make(retry_on: tuple[type[BaseException], ...]) -> Workflow:
        calls = [0]

        async def slow_then_fast() -> str:
            calls[0] += 1
            if calls[0] == 1:
                await asyncio.sleep(60)
            return "fast"

        wf = Workflow("retry-timeout")
        policy = RetryPolicy(retries=1, delay=0.01, retry_on=retry_on)
        wf.add("step", slow_then_fast, timeout=0.2, retry=policy)
        return wf

    retried = make((TimeoutError,)).run(clock=VirtualClock())
    assert retried.ok
    assert retried.outputs["step"] == "fast"
    assert retried.steps["step"].attempts == 2

    not_retried = make((ConnectionError,)).run(clock=VirtualClock())
    assert not_retried.status is RunStatus.FAILED
    assert not_retried.steps["step"].attempts == 1
    assert isinstance(not_retried.steps["step"].error, StepTimeout)


# -- timeouts -------------------------------------------------------------------------------


def test_async_step_timeout_cancels_the_coroutine() -> None:
    cancelled = Log()
    stuck = cancelled.stuck("stuck")

    wf = Workflow("timeout")
    wf.add("stuck", stuck, timeout=0.2)
    t0 = time.monotonic()
    result = wf.run(clock=VirtualClock())
    assert time.monotonic() - t0 < SANITY
    assert list(cancelled) == ["stuck"]
    step = result.steps["stuck"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepTimeout)
    assert step.reason == "timed out after 0.2s"
    assert result.status is RunStatus.FAILED
    assert result.error is step.error


def test_shell_step_timeout_kills_its_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    wf = Workflow("shell-timeout")
    command = f"echo $$ > {pidfile}; exec sleep 60"
    wf.add("sleepy", kind="shell", params={"command": command}, timeout=0.5)
    t0 = time.monotonic()
    result = wf.run()
    assert time.monotonic() - t0 < SANITY
    assert isinstance(result.steps["sleepy"].error, StepTimeout)
    pid = int(pidfile.read_text())
    assert pid_gone(pid), f"shell step process {pid} still runs after run() returned"


def test_processes_step_stuck_in_a_loop_is_killed(spin_pidfile: Path) -> None:
    warm_up_processes()
    pidfile = spin_pidfile
    wf = Workflow("process-timeout")
    wf.add(
        "spin",
        functools.partial(steps.spin, str(pidfile)),
        depends_on=[],
        executor="processes",
        timeout=2.0,
    )
    t0 = time.monotonic()
    result = wf.run()
    assert time.monotonic() - t0 < SANITY
    step = result.steps["spin"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepTimeout)
    assert pidfile.exists(), "the worker never started the step"
    pid = int(pidfile.read_text())
    assert pid_gone(pid), f"worker process {pid} still runs after run() returned"


def test_thread_step_timeout_fails_at_once_but_keeps_its_slot_until_the_thread_ends() -> None:
    log = Log()

    def stuck() -> str:
        time.sleep(0.6)
        log.add(("stuck thread ended", time.monotonic()))
        return "too late"

    def second() -> None:
        log.add(("second started", time.monotonic()))

    recorder = Recorder()
    wf = Workflow("thread-timeout", max_concurrency=1)
    wf.add("stuck", stuck, timeout=0.1, critical=False)
    wf.add("second", second)
    result = wf.run(listeners=[recorder])

    stuck_result = result.steps["stuck"]
    assert stuck_result.state is StepState.FAILED
    assert isinstance(stuck_result.error, StepTimeout)
    assert stuck_result.reason == "timed out after 0.1s"
    assert "stuck" not in result.outputs  # its late return value is not taken
    assert [name for name, _ in log] == ["stuck thread ended", "second started"]
    thread_end = log.items[0][1]
    [failed] = [e for e in recorder.of(EventKind.STEP_FAILED) if e.step == "stuck"]
    assert failed.time < thread_end  # failed at once, not when the thread returned
    assert result.ok


def test_other_steps_go_on_while_a_timed_out_thread_still_runs() -> None:
    log = Log()

    def stuck() -> None:
        time.sleep(0.8)
        log.add("stuck thread ended")

    async def quick() -> int:
        await asyncio.sleep(0.2)
        return 1

    wf = Workflow("go-on", max_concurrency=3)
    wf.add("stuck", stuck, timeout=0.05, critical=False)
    wf.add("quick", quick)
    wf.add("then", lambda quick: log.add("then started"))
    result = wf.run()
    assert result.ok
    assert list(log) == ["then started", "stuck thread ended"]
    # run() returned only after the thread ended.
    assert "stuck thread ended" in list(log)


def test_run_timeout_stops_the_run() -> None:
    cancelled = Log()
    slow = cancelled.stuck("slow")

    wf = Workflow("run-timeout", timeout=0.3)
    wf.add("slow", slow)
    wf.add("after", lambda slow: slow)
    wf.add("quick", lambda: "q")
    t0 = time.monotonic()
    result = wf.run(clock=VirtualClock())
    assert time.monotonic() - t0 < SANITY
    assert result.status is RunStatus.TIMED_OUT
    assert isinstance(result.error, RunTimedOut)
    assert list(cancelled) == ["slow"]
    assert result.steps["slow"].state is StepState.CANCELLED
    assert result.steps["after"].state is StepState.CANCELLED
    assert result.outputs == {"quick": "q"}
    with pytest.raises(RunTimedOut):
        result.raise_for_status()


def test_run_timeout_given_per_run() -> None:
    wf = Workflow("run-timeout")
    wf.add("slow", _sleep_60_async)
    result = wf.run(timeout=0.2, clock=VirtualClock())
    assert result.status is RunStatus.TIMED_OUT


async def _sleep_60_async() -> None:
    await asyncio.sleep(60)


def test_run_timeout_while_a_step_waits_out_a_backoff() -> None:
    """Nothing is running, one step waits 30 s to retry: the run timeout must still end it."""
    wf = Workflow("backoff-timeout", timeout=0.3)
    wf.add("down", _raise_connection_error, retry=RetryPolicy(retries=1, delay=30, jitter=0))
    wf.add("after", lambda down: down)
    t0 = time.monotonic()
    result = wf.run(clock=VirtualClock())
    assert time.monotonic() - t0 < 15, "the run waited for the backoff instead of timing out"
    assert result.status is RunStatus.TIMED_OUT
    assert result.steps["down"].state is StepState.CANCELLED
    assert result.steps["down"].attempts == 1


def _raise_connection_error() -> None:
    raise ConnectionError("service down")


def test_cancelling_run_async_stops_everything(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    cancelled = Log()
    slow = cancelled.stuck("slow")

    async def main() -> list[asyncio.Task[Any]]:
        wf = Workflow("cancel-task")
        wf.add("slow", slow)
        wf.add("sh", kind="shell", params={"command": f"echo $$ > {pidfile}; exec sleep 60"})
        task = asyncio.ensure_future(wf.run_async())
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t is not me]

    t0 = time.monotonic()
    leftover = asyncio.run(main())
    assert time.monotonic() - t0 < SANITY
    assert leftover == []
    assert list(cancelled) == ["slow"]
    assert pid_gone(int(pidfile.read_text()))


# -- nothing is left behind ------------------------------------------------------------------


def test_nothing_keeps_running_after_run_returns(spin_pidfile: Path) -> None:
    warm_up_processes()
    threads_before = set(threading.enumerate())
    children_before = child_pids()

    def slow_thread() -> None:
        time.sleep(3.0)  # outlives its timeout and every other step

    wf = Workflow("leftovers", on_failure="continue")
    wf.add("thread", lambda: 1)
    wf.add("late_thread", slow_thread, timeout=0.05, critical=False)
    wf.add("coroutine", _sleep_60_async, timeout=0.1, critical=False)
    wf.add("process", steps.square, depends_on=["thread"], executor="processes")
    wf.add(
        "stuck_process",
        functools.partial(steps.spin, str(spin_pidfile)),
        depends_on=[],
        executor="processes",
        timeout=2.0,
        critical=False,
    )
    wf.add("shell", kind="shell", params={"command": "sleep 60"}, timeout=0.2, critical=False)
    wf.add("shell_ok", kind="shell", params={"command": "echo hi"})
    result = wf.run()
    assert result.outputs["process"] == 1
    assert result.steps["late_thread"].state is StepState.FAILED
    # A worker thread may still be on its way out right after it signalled the end; give it
    # a moment (far less than late_thread would need if it were still sleeping).
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=0.5)
    assert set(threading.enumerate()) == threads_before
    assert child_pids() - children_before == set()


def test_run_async_leaves_no_pending_tasks() -> None:
    async def main() -> tuple[pardag.RunResult, list[asyncio.Task[Any]]]:
        wf = Workflow("tasks")
        wf.add("fast", lambda: 1)
        wf.add("timed_out", _sleep_60_async, timeout=0.05, critical=False)
        wf.add("shell", kind="shell", params={"command": "sleep 60"}, timeout=0.1, critical=False)
        wf.add("bad", _raise_bad_after_a_moment)
        wf.add("cancelled", _sleep_60_async)
        result = await wf.run_async()
        me = asyncio.current_task()
        return result, [t for t in asyncio.all_tasks() if t is not me]

    result, leftover = asyncio.run(main())
    assert result.status is RunStatus.FAILED
    assert result.steps["cancelled"].state is StepState.CANCELLED
    assert leftover == []


async def _raise_bad_after_a_moment() -> None:
    await asyncio.sleep(0.2)
    raise RuntimeError("bad")


def test_run_inside_a_running_loop_points_to_run_async() -> None:
    wf = Workflow("nested")
    wf.add("a", lambda: 1)

    async def main() -> None:
        wf.run()

    with pytest.raises(ArgumentError, match="run_async"):
        asyncio.run(main())


def test_run_async_gives_the_same_result() -> None:
    wf = Workflow("async-api")
    wf.add("a", lambda: 2)
    wf.add("b", lambda a: a * 21)
    result = asyncio.run(wf.run_async(params={"x": 1}, mode="sequential"))
    assert result.ok
    assert result.final_output == 42


# -- limits end to end ------------------------------------------------------------------------


def test_max_concurrency_and_pools_are_respected() -> None:
    overall, db = Peak(), Peak()

    async def work() -> None:
        overall.enter()
        await asyncio.sleep(0.01)
        overall.leave()

    def db_work() -> None:
        overall.enter()
        db.enter()
        time.sleep(0.01)
        db.leave()
        overall.leave()

    wf = Workflow("limits", max_concurrency=4, pools={"db": 2})
    for i in range(20):
        wf.add(f"w{i}", work)
        wf.add(f"db{i}", db_work, resources={"db": 1})
    result = wf.run()
    assert result.ok
    assert overall.peak <= 4
    assert db.peak <= 2


def test_pool_waits_are_reported() -> None:
    recorder = Recorder()
    wf = Workflow("waits", pools={"db": 1})
    for i in range(3):
        wf.add(f"db{i}", _sleep_a_little, resources={"db": 1})
    assert wf.run(listeners=[recorder]).ok
    waits = recorder.of(EventKind.STEP_WAITING)
    assert {e.step for e in waits} == {"db1", "db2"}
    assert all("db" in str(e.data.get("waiting_on")) for e in waits)


async def _sleep_a_little() -> None:
    await asyncio.sleep(0.01)


def test_rate_limited_pool_spaces_out_starts() -> None:
    """pools={"api": (size, rate)}: starts come at most ``rate`` per second."""
    recorder = Recorder()
    wf = Workflow("rate", pools={"api": (10, 5.0)})
    for i in range(4):
        wf.add(f"r{i}", lambda: 1, resources={"api": 1})
    result = wf.run(listeners=[recorder], clock=VirtualClock())
    assert result.ok
    starts = [e.time for e in recorder.of(EventKind.STEP_STARTED)]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert all(gap >= 0.15 for gap in gaps), gaps  # 5/s: one every 0.2 s


# -- events -------------------------------------------------------------------------------


def test_events_come_in_order() -> None:
    recorder = Recorder()
    wf = Workflow("events")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    result = wf.run(listeners=[recorder])
    seen = [(e.kind.value, e.step) for e in recorder.events]
    assert seen == [
        ("run_started", None),
        ("step_ready", "a"),
        ("step_started", "a"),
        ("step_succeeded", "a"),
        ("step_ready", "b"),
        ("step_started", "b"),
        ("step_succeeded", "b"),
        ("run_finished", None),
    ]
    assert {e.run for e in recorder.events} == {result.run_id}
    times = [e.time for e in recorder.events]
    assert times == sorted(times)
    assert recorder.of(EventKind.STEP_STARTED)[0].attempt == 1
    assert recorder.events[-1].data == {"status": "succeeded"}


def test_events_carry_skip_and_failure_reasons() -> None:
    recorder = Recorder()
    wf = Workflow("reasons", on_failure="continue")
    wf.add("bad", _raise_value_error)
    wf.add("after", lambda bad: bad)
    wf.add("gated", lambda: 1, when=lambda: False)
    wf.run(listeners=[recorder])
    skipped = {e.step: e.data["reason"] for e in recorder.of(EventKind.STEP_SKIPPED)}
    assert skipped == {"after": "upstream failed: bad", "gated": "condition false"}
    [failed] = recorder.of(EventKind.STEP_FAILED)
    assert failed.step == "bad"
    assert failed.data["reason"] == "ValueError: boom"
    assert recorder.events[-1].data == {"status": "failed"}


def test_failing_listener_does_not_break_the_run() -> None:
    class Broken:
        def on_event(self, event: pardag.Event) -> None:
            raise RuntimeError("listener bug")

    recorder = Recorder()
    wf = Workflow("listeners")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    result = wf.run(listeners=[Broken(), recorder])
    assert result.ok
    assert result.final_output == 2
    kinds = [e.kind for e in recorder.events]
    assert kinds[0] is EventKind.RUN_STARTED
    assert kinds[-1] is EventKind.RUN_FINISHED
    assert kinds.count(EventKind.STEP_SUCCEEDED) == 2


# -- when ---------------------------------------------------------------------------------


def test_when_callable_decides_by_the_inputs() -> None:
    log = Log()
    wf = Workflow("when")
    wf.add("count", lambda params: params["count"])
    wf.add("big", lambda count: log.add("big") or count, when=lambda count: count > 5)
    wf.add("after_big", lambda big: big)
    wf.add("small", lambda count: log.add("small") or count, when=lambda count: count <= 5)

    result = wf.run(params={"count": 3})
    assert list(log) == ["small"]
    assert result.ok
    big = result.steps["big"]
    assert big.state is StepState.SKIPPED
    assert big.reason == "condition false"
    assert big.attempts == 0
    assert result.steps["after_big"].reason == "upstream skipped: big"

    assert wf.run(params={"count": 9}).outputs["after_big"] == 9


def test_when_expression_string() -> None:
    wf = Workflow("when-expr")
    wf.add("count", lambda params: params["count"])
    wf.add("big", lambda count: count, when="count > 5 and params.go")
    assert wf.run(params={"count": 7, "go": True}).steps["big"].state is StepState.SUCCEEDED
    skipped = wf.run(params={"count": 7, "go": False}).steps["big"]
    assert skipped.state is StepState.SKIPPED
    assert skipped.reason == "condition false"


def test_when_that_raises_fails_the_step_once() -> None:
    log = Log()

    def broken_condition(a: int) -> bool:
        raise KeyError("no such field")

    wf = Workflow("when-raises")
    wf.add("a", lambda: 1)
    wf.add(
        "b",
        lambda a: log.add("b ran"),
        when=broken_condition,
        retry=RetryPolicy(retries=3, delay=0.01),
    )
    result = wf.run()
    assert list(log) == []
    step = result.steps["b"]
    assert step.state is StepState.FAILED
    assert isinstance(step.error, StepFailed)
    assert isinstance(step.error.cause, KeyError)
    assert step.attempts == 1
    assert result.status is RunStatus.FAILED


# -- Ctrl-C -------------------------------------------------------------------------------

CTRL_C_SCRIPT = """
import asyncio, sys, time
import pardag

class Say:
    def on_event(self, event):
        if event.kind == "step_cancelled":
            print("cancelled", event.step, flush=True)
        elif event.kind == "step_retrying":
            print("retrying", event.step, flush=True)

async def long_async():
    print("started", flush=True)
    await asyncio.sleep(60)

async def stubborn_async():
    print("started", flush=True)
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            print("ignored", flush=True)

def long_thread():
    print("started", flush=True)
    time.sleep(20)

def failing():
    print("started", flush=True)
    raise ConnectionError("down")

kind = sys.argv[1]
wf = pardag.Workflow("ctrl-c")
fns = {"async": long_async, "stubborn": stubborn_async, "thread": long_thread, "backoff": failing}
retry = pardag.RetryPolicy(retries=1, delay=30, jitter=0) if kind == "backoff" else None
wf.add("long", fns[kind], retry=retry)
wf.add("after", lambda long: long)
result = wf.run(listeners=[Say()])
print("status", result.status.value, result.steps["long"].state.value, flush=True)
"""


@pytest.fixture
def start_script(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start the Ctrl-C script (killed at teardown if a test leaves it running)."""
    started: list[subprocess.Popen[str]] = []

    def start(kind: str) -> subprocess.Popen[str]:
        script = tmp_path / "ctrl_c.py"
        script.write_text(CTRL_C_SCRIPT)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            [sys.executable, str(script), kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "started\n", (line, proc.stderr.read() if proc.stderr else "")
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def read_until(proc: subprocess.Popen[str], wanted: str) -> list[str]:
    """Read the script's output lines up to and including ``wanted``."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != wanted:
        line = proc.stdout.readline()
        assert line, f"output ended before {wanted!r}: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def finish_within(proc: subprocess.Popen[str], seconds: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the process was still running {seconds:g}s after Ctrl-C")


def test_ctrl_c_once_cancels_the_run_cleanly(
    start_script: Callable[[str], subprocess.Popen[str]],
) -> None:
    proc = start_script("async")
    proc.send_signal(signal.SIGINT)
    out, err = finish_within(proc, 20)
    assert proc.returncode == 0, err
    assert "status cancelled cancelled" in out
    assert "cancelled long" in out
    assert "cancelled after" in out
    assert "Traceback" not in err


def test_ctrl_c_twice_exits_at_once(start_script: Callable[[str], subprocess.Popen[str]]) -> None:
    proc = start_script("stubborn")
    proc.send_signal(signal.SIGINT)
    read_until(proc, "ignored")  # the first press cancelled the step, which ignores it
    proc.send_signal(signal.SIGINT)
    out, err = finish_within(proc, 15)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert "status" not in out


def test_ctrl_c_twice_exits_at_once_even_with_a_running_thread(
    start_script: Callable[[str], subprocess.Popen[str]],
) -> None:
    """DESIGN §2: 'the second [Ctrl-C] exits at once', also while a thread step still runs."""
    proc = start_script("thread")
    proc.send_signal(signal.SIGINT)
    read_until(proc, "cancelled long")  # the first press was handled
    proc.send_signal(signal.SIGINT)
    out, _ = finish_within(proc, 8)  # the thread would run 20 s more
    assert proc.returncode != 0
    assert "status" not in out


def test_ctrl_c_during_a_backoff_cancels_at_once(
    start_script: Callable[[str], subprocess.Popen[str]],
) -> None:
    proc = start_script("backoff")
    read_until(proc, "retrying long")  # now nothing runs: the step waits 30 s to retry
    proc.send_signal(signal.SIGINT)
    out, err = finish_within(proc, 15)
    assert proc.returncode == 0, err
    assert "status cancelled cancelled" in out


def test_thread_lookahead_never_runs_more_than_the_limit() -> None:
    """With no listener, thread steps are handed over ahead; threads still cap concurrency."""
    peak = Peak()

    def work(inputs: dict[str, Any]) -> int:
        peak.enter()
        time.sleep(0.01)
        peak.leave()
        return len(inputs)

    wf = Workflow("ahead")
    wf.add("root", lambda: 0)
    for k in range(40):
        wf.add(f"w{k}", work, depends_on=["root"])
    wf.add("sink", work, depends_on=[f"w{k}" for k in range(40)])
    before = threading.active_count()
    result = wf.run(max_concurrency=3)
    assert result.ok
    assert result.outputs["sink"] == 40
    assert peak.peak == 3  # reached, never passed
    assert threading.active_count() == before  # the step threads are gone after run()


def test_inline_steps_run_in_the_loop_thread_and_fail_like_any_step() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    calls = [0]

    def here(a: int) -> int:
        seen.append(threading.get_ident())
        return a + 1

    def flaky() -> str:
        calls[0] += 1
        if calls[0] < 3:
            raise ValueError("not yet")
        return "ok"

    wf = Workflow("inline", on_failure="continue")
    wf.add("a", lambda: 1, executor="inline")
    wf.add("b", here, executor="inline")
    wf.add("flaky", flaky, executor="inline", retry=RetryPolicy(retries=2, delay=0))
    wf.add("bad", lambda: 1 / 0, executor="inline")
    wf.add("after", lambda bad: bad, executor="inline")
    result = wf.run()
    assert result.outputs["b"] == 2
    assert seen == [loop_thread]  # wf.run() runs its loop in the calling thread
    assert result.outputs["flaky"] == "ok"
    assert result.steps["flaky"].attempts == 3
    bad = result.steps["bad"]
    assert bad.state is StepState.FAILED
    assert isinstance(bad.error, StepFailed)
    assert isinstance(bad.error.cause, ZeroDivisionError)
    assert result.steps["after"].reason == "upstream failed: bad"
