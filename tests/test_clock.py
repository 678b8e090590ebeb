"""The run's clock: the runner reads time and arms timers only through it, so a virtual clock
runs a 30-second backoff or a 10-second timeout at once, with the same outcome."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

import pardag
from pardag import EventKind, Recorder, RetryPolicy, RunStatus, StepState, Workflow
from pardag.clock import SystemClock, VirtualClock

SANITY = 20.0
"""Real seconds no run below comes near: they wait minutes of virtual time."""


async def _forever() -> None:
    await asyncio.Event().wait()


def test_virtual_timers_fire_in_time_order_and_can_be_cancelled() -> None:
    clock = VirtualClock(start=100.0, wall=1000.0)
    fired: list[tuple[str, float]] = []

    async def main() -> None:
        clock.call_later(5, lambda: fired.append(("b", clock.monotonic())))
        clock.call_at(101.5, lambda: fired.append(("a", clock.monotonic())))
        clock.call_later(2, lambda: fired.append(("never", clock.monotonic()))).cancel()
        clock.call_later(5, lambda: fired.append(("b2", clock.monotonic())))
        await asyncio.sleep(0.2)  # real time: far more than the clock's idle threshold

    asyncio.run(main())
    assert fired == [("a", 101.5), ("b", 105.0), ("b2", 105.0)]
    assert clock.jumped == 5.0
    assert clock.time() == 1105.0


def test_a_virtual_clock_stands_still_while_the_run_is_working() -> None:
    clock = VirtualClock()
    fired: list[float] = []
    busy = [True]

    async def main() -> None:
        clock.watch(lambda: not busy[0])
        clock.call_later(1, lambda: fired.append(clock.monotonic()))
        await asyncio.sleep(0.05)
        assert fired == [] and clock.monotonic() == 0.0
        busy[0] = False
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert fired == [1.0]


def test_the_system_clock_is_the_systems_time() -> None:
    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 1.0
    assert abs(clock.monotonic() - time.monotonic()) < 1.0


def test_a_long_backoff_runs_in_virtual_time() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "up"

    clock, recorder = VirtualClock(), Recorder()
    wf = Workflow("backoff")
    wf.add("flaky", flaky, retry=RetryPolicy(retries=2, delay=30, factor=2, jitter=0))
    t0 = time.monotonic()
    result = wf.run(clock=clock, listeners=[recorder])
    assert time.monotonic() - t0 < SANITY
    assert result.outputs["flaky"] == "up" and result.steps["flaky"].attempts == 3
    starts = [e.time for e in recorder.of(EventKind.STEP_STARTED)]
    assert [b - a for a, b in itertools.pairwise(starts)] == [30.0, 60.0]
    assert clock.jumped == 90.0
    step = result.steps["flaky"]
    assert step.started_at is not None and step.finished_at is not None
    assert step.finished_at - step.started_at == pytest.approx(90.0)  # wall time is virtual too


def test_a_step_timeout_in_virtual_time() -> None:
    clock = VirtualClock()
    wf = Workflow("timeout")
    wf.add("hangs", _forever, timeout=600)
    wf.add("quick", lambda: "q")
    result = wf.run(clock=clock)
    assert result.steps["hangs"].state is StepState.FAILED
    assert result.steps["hangs"].reason == "timed out after 600s"
    assert result.outputs["quick"] == "q"
    assert clock.jumped == 600.0


def test_the_run_timeout_comes_before_a_longer_backoff_in_virtual_time() -> None:
    clock = VirtualClock()
    wf = Workflow("order", timeout=3600)
    wf.add("down", _raise, retry=RetryPolicy(retries=1, delay=7200, max_delay=7200, jitter=0))
    result = wf.run(clock=clock)
    assert result.status is RunStatus.TIMED_OUT
    assert result.steps["down"].state is StepState.CANCELLED
    assert clock.jumped == 3600.0


def _raise() -> None:
    raise ConnectionError("down")


def test_an_approval_wait_in_virtual_time_applies_its_on_timeout() -> None:
    clock = VirtualClock()
    wf = Workflow("approval")
    wf.add(
        "ask",
        kind="approval",
        params={"prompt": "ship?", "timeout": "2h", "on_timeout": "approve", "default": "auto"},
    )
    wf.add("hangs", _forever, timeout=3 * 3600, critical=False)  # keeps the run alive
    result = wf.run(clock=clock)
    assert result.outputs["ask"] == "auto"
    assert result.steps["hangs"].state is StepState.FAILED
    assert clock.jumped == 3 * 3600.0


def test_a_thread_step_is_not_timed_out_by_a_virtual_clock() -> None:
    """Virtual time stands still while a step works on a thread: what the docs promise."""
    clock = VirtualClock()
    wf = Workflow("thread")
    wf.add("works", lambda: time.sleep(0.2) or "done", timeout=0.1)
    result = wf.run(clock=clock)
    assert result.outputs["works"] == "done"
    assert clock.jumped == 0.0


def test_an_unknown_clock_option_is_named() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    with pytest.raises(pardag.UnknownOption, match="'clok'; did you mean 'clock'"):
        wf.run(clok=VirtualClock())  # type: ignore[call-arg]
