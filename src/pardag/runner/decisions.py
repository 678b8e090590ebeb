"""What a run does after an attempt fails, and how it ends: pure functions, no event loop.

``after_failure`` turns one failed attempt (its exception, or None when it was stopped) and
the facts around it into one ``Decision``: pause it, let it skip itself, cancel it, retry it
after a delay, or fail it (and perhaps the run). ``run_status`` says how a run ends. The
``Runner`` applies what they decide; tests can ask them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from pardag.errors import (
    PardagError,
    StepCancelled,
    StepFailed,
    StepPaused,
    StepSkipped,
    StepTimeout,
)
from pardag.executors.base import format_traceback
from pardag.model import Step
from pardag.runner.state import Stop
from pardag.states import RunStatus, StepState

__all__ = [
    "Cancel",
    "Decision",
    "Fail",
    "Pause",
    "Retry",
    "SkipItself",
    "after_failure",
    "run_status",
    "stalled",
    "step_error",
]


@dataclass(frozen=True, slots=True)
class Pause:
    """The step waits for a person's answer; look again after ``wait`` seconds (if given)."""

    prompt: str
    wait: float | None


@dataclass(frozen=True, slots=True)
class SkipItself:
    """The step raised ``StepSkipped``: it ends skipped, and is never retried."""

    reason: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """The run is stopping: the attempt (or the retry it will not get) ends cancelled."""

    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Another attempt after ``delay`` seconds, holding no slot meanwhile."""

    delay: float


@dataclass(frozen=True, slots=True)
class Fail:
    """The step fails with ``error``; ``abort`` stops the run (a critical step, fail-fast)."""

    error: StepFailed
    abort: bool


Decision = Pause | SkipItself | Cancel | Retry | Fail


def after_failure(
    step: Step,
    exc: BaseException | None,
    attempts: int,
    timed_out: bool,
    may_retry: bool,
    stopping: Stop | None,
    *,
    fail_fast: bool,
    rand: Callable[[], float],
) -> Decision:
    """Decide what follows a failed attempt of ``step``.

    ``exc`` is what the attempt raised, None when it was stopped (a timeout or the run
    stopping); ``attempts`` counts this one; ``may_retry`` is False after a mistake in the
    workflow itself (a ``when`` or cache key that cannot be evaluated); ``rand()`` in [0, 1)
    spreads the backoff (asked only for a retry). A run that is stopping pauses and skips
    nothing, and retries nothing.
    """
    if stopping is None and isinstance(exc, StepPaused):
        return Pause(exc.prompt, exc.wait)
    if stopping is None and isinstance(exc, StepSkipped):
        return SkipItself(exc.reason)
    retryable = may_retry and _retryable(step, exc, attempts, timed_out)
    stopped_under_it = exc is None and not timed_out
    if stopping is not None and (stopped_under_it or retryable):
        return Cancel(stopping.reason)
    if retryable:
        assert step.retry is not None  # _retryable said so
        return Retry(step.retry.backoff(attempts, rand()))
    error = step_error(step, exc, timed_out)
    return Fail(error, abort=step.critical and fail_fast)


def _retryable(step: Step, exc: BaseException | None, attempts: int, timed_out: bool) -> bool:
    """Whether the step's retry policy allows another attempt after this one."""
    policy = step.retry
    if policy is None or attempts > policy.retries:
        return False
    if timed_out:
        return issubclass(TimeoutError, policy.retry_on)
    return isinstance(exc, policy.retry_on)


def step_error(step: Step, exc: BaseException | None, timed_out: bool) -> StepFailed:
    """The error a failed attempt leaves on its step: timed out, cancelled, or its exception."""
    if timed_out:
        return StepTimeout(step.id, exc, f"timed out after {step.timeout:g}s")
    if exc is None:
        return StepCancelled(step.id, None, "cancelled")
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return StepFailed(step.id, exc, reason, format_traceback(exc))


def run_status(
    stop: Stop | None, paused: bool, first_failure: StepFailed | None
) -> tuple[RunStatus, PardagError | None]:
    """How a run ends: as it was stopped, paused, failed at its first critical failure, or
    succeeded; and the error that says why."""
    if stop is not None:
        return stop.status, stop.error
    if paused:
        return RunStatus.PAUSED, None
    if first_failure is not None:
        return RunStatus.FAILED, first_failure
    return RunStatus.SUCCEEDED, None


def stalled(
    states: Sequence[StepState], paused: Collection[int], waiting: bool, ids: Sequence[str]
) -> str | None:
    """Why a run that has nothing to do now cannot go on: None while something will still
    wake it (``waiting`` for work, a timer or the store, or a step retrying later),
    ``"paused"`` when only steps waiting for an answer are left, else the stuck steps (a bug
    in pardag: the run fails loudly instead of hanging)."""
    if waiting or any(s is StepState.RETRYING for s in states):
        return None
    if paused:
        return "paused"
    stuck = [ids[i] for i, s in enumerate(states) if not s.is_final()]
    return f"pardag stalled with steps {stuck[:10]} not final; please report this"
