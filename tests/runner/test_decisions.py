"""The runner's decisions, asked directly: no event loop, no threads, no clock."""

from __future__ import annotations

import pytest

from pardag import RetryPolicy, RunStatus, StepState
from pardag.errors import (
    RunCancelled,
    StepCancelled,
    StepFailed,
    StepPaused,
    StepSkipped,
    StepTimeout,
)
from pardag.model import Step
from pardag.runner.decisions import (
    Cancel,
    Fail,
    Pause,
    Retry,
    SkipItself,
    after_failure,
    run_status,
    stalled,
    step_error,
)
from pardag.runner.state import Stop

STOPPING = Stop.cancelled("Ctrl-C")


def never() -> float:
    raise AssertionError("rand() is asked only when the step is retried")


def decide(step: Step, exc: BaseException | None, **facts: object) -> object:
    defaults: dict[str, object] = {
        "attempts": 1,
        "timed_out": False,
        "may_retry": True,
        "stopping": None,
        "fail_fast": True,
        "rand": never,
    }
    defaults.update(facts)
    args = [defaults.pop(k) for k in ("attempts", "timed_out", "may_retry", "stopping")]
    return after_failure(step, exc, *args, **defaults)  # type: ignore[arg-type]


RETRY = RetryPolicy(retries=2, delay=10, factor=2, jitter=0.5, retry_on=(ConnectionError,))


def test_a_paused_step_pauses_with_its_question_and_wait() -> None:
    assert decide(Step("a"), StepPaused("ship?", wait=5.0)) == Pause("ship?", 5.0)


def test_a_step_may_skip_itself() -> None:
    assert decide(Step("a", retry=RETRY), StepSkipped("nothing new")) == SkipItself("nothing new")


def test_a_stopping_run_cancels_what_it_stopped_and_what_would_retry() -> None:
    step = Step("a", retry=RETRY)
    for exc in (ConnectionError("down"), None):
        assert decide(step, exc, stopping=STOPPING) == Cancel("cancelled by Ctrl-C")


def test_a_stopping_run_neither_pauses_nor_skips_a_step() -> None:
    for exc in (StepPaused("ship?"), StepSkipped("x")):
        decision = decide(Step("a"), exc, stopping=STOPPING)
        assert isinstance(decision, Fail) and decision.error.cause is exc


def test_a_stopping_run_still_fails_what_failed_on_its_own() -> None:
    decision = decide(Step("a"), ValueError("bad"), stopping=STOPPING)
    assert isinstance(decision, Fail) and decision.error.reason == "ValueError: bad"


def test_a_retry_waits_the_backoff_of_its_attempt_spread_by_rand() -> None:
    assert decide(Step("a", retry=RETRY), ConnectionError(), rand=lambda: 0.5) == Retry(10.0)
    second = decide(Step("a", retry=RETRY), ConnectionError(), attempts=2, rand=lambda: 1.0)
    assert second == Retry(30.0)  # 20 s, +50 % jitter at rand 1.0


def test_retries_stop_at_the_limit_at_other_errors_and_after_a_workflow_mistake() -> None:
    step = Step("a", retry=RETRY)
    assert isinstance(decide(step, ConnectionError(), attempts=3), Fail)
    assert isinstance(decide(step, ValueError()), Fail)
    assert isinstance(decide(step, ConnectionError(), may_retry=False), Fail)


def test_a_timed_out_attempt_is_retried_only_when_timeouts_are() -> None:
    timeouts = RetryPolicy(retries=1, delay=0, retry_on=(TimeoutError,))
    assert decide(Step("a", retry=timeouts, timeout=5), None, timed_out=True, rand=lambda: 0) == (
        Retry(0.0)
    )
    failed = decide(Step("a", retry=RETRY, timeout=5), None, timed_out=True)
    assert isinstance(failed, Fail) and isinstance(failed.error, StepTimeout)
    assert failed.error.reason == "timed out after 5s"


@pytest.mark.parametrize(
    ("critical", "fail_fast", "abort"),
    [(True, True, True), (True, False, False), (False, True, False)],
)
def test_a_failure_stops_the_run_only_for_a_critical_step_under_fail_fast(
    critical: bool, fail_fast: bool, abort: bool
) -> None:
    decision = decide(Step("a", critical=critical), OSError("disk"), fail_fast=fail_fast)
    assert isinstance(decision, Fail) and decision.abort is abort
    assert decision.error.step == "a" and decision.error.reason == "OSError: disk"


def test_step_errors_say_why() -> None:
    assert isinstance(step_error(Step("a", timeout=2.5), None, True), StepTimeout)
    cancelled = step_error(Step("a"), None, False)
    assert isinstance(cancelled, StepCancelled) and cancelled.reason == "cancelled"
    plain = step_error(Step("a"), KeyError(), False)
    assert type(plain) is StepFailed and plain.reason == "KeyError"
    assert "KeyError" in plain.traceback


def test_how_a_run_ends() -> None:
    failure = StepFailed("a", None, "boom")
    assert run_status(None, False, None) == (RunStatus.SUCCEEDED, None)
    assert run_status(None, False, failure) == (RunStatus.FAILED, failure)
    assert run_status(None, True, failure) == (RunStatus.PAUSED, None)
    status, error = run_status(STOPPING, True, failure)
    assert status is RunStatus.CANCELLED and isinstance(error, RunCancelled)


def test_a_stall_is_a_pause_a_wait_or_a_bug() -> None:
    ids = ["a", "b"]
    pending, done = StepState.PENDING, StepState.SUCCEEDED
    assert stalled([done, pending], set(), True, ids) is None  # something still works
    assert stalled([done, StepState.RETRYING], set(), False, ids) is None
    assert stalled([done, StepState.PAUSED], {1}, False, ids) == "paused"
    bug = stalled([done, pending], set(), False, ids)
    assert bug is not None and "['b']" in bug and "please report" in bug
