"""The summary's speed-up: computed from the run's own step times, shown only where it means
something. Built from step records, not wall clocks, so each edge is exact."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pardag.progress import print_summary, speedup, step_seconds
from pardag.results import RunResult, StepResult
from pardag.states import RunStatus, StepState

T0 = 1_000_000.0  # when the run started in this process (time.time() seconds)


def run_of(
    *spans: tuple[float, float], status: RunStatus = RunStatus.SUCCEEDED, ended: float = 99.0
) -> RunResult:
    """A run whose steps ran at these (start, end) offsets from T0; ``ended``: the run's end
    (process start-up and the store's set-up lie outside the steps)."""
    steps = {
        f"s{n}": StepResult(f"s{n}", StepState.SUCCEEDED, 1, T0 + a, T0 + b)
        for n, (a, b) in enumerate(spans)
    }
    return RunResult("r", "wf", status, steps, {}, started_at=T0, finished_at=T0 + ended)


def closing_line(result: RunResult) -> str:
    out = io.StringIO()
    print_summary(Console(file=out, width=200), result)
    return out.getvalue().splitlines()[-1]


def test_two_steps_at_once_run_twice_as_fast_whatever_the_process_did_around_them() -> None:
    result = run_of((0.0, 1.0), (0.0, 1.0), ended=30.0)  # 29 s of start-up are not the steps'
    assert speedup(result) == pytest.approx(2.0)
    assert step_seconds(result) == pytest.approx(2.0)
    assert closing_line(result).endswith(
        "; speed-up 2.0x over running them one after another (2.00s of steps)"
    )


def test_steps_one_after_another_show_no_speed_up() -> None:
    result = run_of((0.0, 1.0), (1.0, 2.0), (2.0, 3.0))
    assert speedup(result) is None  # 1.0x: nothing ran at once
    assert "speed-up" not in closing_line(result)


@pytest.mark.parametrize(("second_end", "shown"), [(0.099, False), (0.101, True)])
def test_the_ratio_must_reach_1_1(second_end: float, shown: bool) -> None:
    result = run_of((0.0, 1.0), (0.0, second_end))
    assert (speedup(result) is not None) is shown


@pytest.mark.parametrize(("span", "shown"), [(0.0999, False), (0.1001, True)])
def test_steps_spanning_under_a_tenth_of_a_second_show_none(span: float, shown: bool) -> None:
    result = run_of((0.0, span), (0.0, span), (0.0, span))  # 3.0x, were it long enough
    assert (speedup(result) is not None) is shown


@pytest.mark.parametrize(
    "status", [RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT, RunStatus.PAUSED]
)
def test_a_run_that_stopped_part_way_shows_none(status: RunStatus) -> None:
    result = run_of((0.0, 1.0), (0.0, 1.0), status=status)
    assert speedup(result) is None
    assert "speed-up" not in closing_line(result)


def test_a_resumed_run_counts_only_the_steps_it_ran_itself() -> None:
    """After an approval, the steps kept from the first process ran an hour before: they
    count neither in the sum nor in the span (it read 8.6x after a reject)."""
    result = run_of((-3600.0, -3590.0), (-3590.0, -3580.0), (0.0, 1.0), (0.0, 1.0))
    assert speedup(result) == pytest.approx(2.0)
    assert step_seconds(result) == pytest.approx(2.0)


def test_steps_that_never_started_do_not_count() -> None:
    result = run_of((0.0, 1.0), (0.0, 1.0))
    assert isinstance(result.steps, dict)
    result.steps["skipped"] = StepResult("skipped", StepState.SKIPPED)
    assert speedup(result) == pytest.approx(2.0)
