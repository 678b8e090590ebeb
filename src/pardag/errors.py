"""Every error pardag raises, so callers can catch exactly what they mean.

The hierarchy::

    PardagError                   base of everything below
    ├── ArgumentError             a bad argument to an API call (names the argument)
    ├── ExpressionError           evaluating a ``when`` or condition expression failed
    ├── ValidationError           a workflow that cannot run; carries every problem found
    │   └── CycleError            ... among them a cycle, available as ``.cycle``
    ├── StepFailed                a step did not succeed; keeps the original exception
    │   ├── StepTimeout           ... because it ran past its timeout
    │   └── StepCancelled         ... because the run was cancelled under it
    ├── StepPaused                a step waits for a person (raised by approval steps)
    ├── StepSkipped               a step skips itself (raised by the step, with a reason)
    ├── MissingRuntime            a step language's runtime is not installed (names the extra)
    ├── RunCancelled              the run was cancelled (Ctrl-C, ``Runner.cancel``)
    └── RunTimedOut               the run ran past its ``timeout``

``ArgumentError``, ``ValidationError`` and ``CycleError`` are also ``ValueError`` so that code
written against plain Python conventions still catches them; ``MissingRuntime`` is also an
``ImportError``. A step's own exception is never
swallowed: it is ``StepFailed.cause`` (and ``__cause__``), with its formatted traceback in
``StepFailed.traceback``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ArgumentError",
    "CycleError",
    "ExpressionError",
    "MissingRuntime",
    "PardagError",
    "Problem",
    "RunCancelled",
    "RunTimedOut",
    "StepCancelled",
    "StepFailed",
    "StepPaused",
    "StepSkipped",
    "StepTimeout",
    "ValidationError",
]


class PardagError(Exception):
    """Base class of every error raised by pardag."""


class MissingRuntime(PardagError, ImportError):
    """A step language's runtime is not installed; the message names the extra to install."""


class ArgumentError(PardagError, ValueError):
    """An API call got an argument it cannot use; the message names it and the fix."""


class ExpressionError(PardagError):
    """Evaluating an expression failed; the message names where, the expression and why.

    ``where`` and ``source`` are the place and the expression text.
    """

    def __init__(self, message: str, where: str = "", source: str = "") -> None:
        super().__init__(message)
        self.where = where
        self.source = source

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, str]]:
        return (type(self), (str(self), self.where, self.source))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow: which ``step`` (may be None), what to do, and ``where``.

    ``where`` is a place in a workflow file, such as ``flow.yaml:12``, when the workflow came
    from one.
    """

    step: str | None
    message: str
    where: str | None = None

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        step = f"step {self.step!r}: " if self.step is not None else ""
        return place + step + self.message


class ValidationError(PardagError, ValueError):
    """A workflow failed validation; ``problems`` lists every problem found, not just the first.

    Nothing runs when validation fails.
    """

    def __init__(self, workflow: str, problems: Sequence[Problem]) -> None:
        self.workflow = workflow
        self.problems = list(problems)
        count = len(self.problems)
        head = f"workflow {workflow!r} is invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class CycleError(ValidationError):
    """The workflow has a cycle. ``cycle`` is its path, first step repeated at the end."""

    def __init__(self, workflow: str, problems: Sequence[Problem], cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(workflow, problems)


class StepFailed(PardagError):
    """A step did not succeed. ``cause`` is the step's own exception, ``traceback`` its text."""

    def __init__(
        self, step: str, cause: BaseException | None, reason: str, traceback: str = ""
    ) -> None:
        self.step = step
        self.cause = cause
        self.reason = reason
        self.traceback = traceback
        super().__init__(f"step {step!r} failed: {reason}")
        if cause is not None:
            self.__cause__ = cause


class StepTimeout(StepFailed):
    """A step ran past its ``timeout`` (or the run's) and was stopped."""


class StepCancelled(StepFailed):
    """A step was cancelled because the run was cancelled or failed elsewhere."""


class StepSkipped(PardagError):
    """Raised by a step to skip itself: it ends ``skipped`` with ``reason``, is not retried,
    and its dependents follow their trigger rules, as after a false ``when``.

    For a decision only the step can make once it runs (no new data, nothing to do).
    """

    def __init__(self, reason: str = "skipped by the step") -> None:
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self) -> tuple[type[StepSkipped], tuple[str]]:
        return (type(self), (self.reason,))


class StepPaused(PardagError):
    """Raised by a step that waits for a person's answer: the runner pauses it (no slot held).

    ``prompt`` is the question. The run goes on with what does not depend on the step and
    ends ``paused`` when nothing else can move; an answer (``pardag approve``) resumes it.
    """

    def __init__(self, prompt: str, wait: float | None = None) -> None:
        self.prompt = prompt
        self.wait = wait
        """Seconds until the step wants another look (its approval timeout), or None."""
        super().__init__(f"waiting for approval: {prompt}")

    def __reduce__(self) -> tuple[type[StepPaused], tuple[str, float | None]]:
        return (type(self), (self.prompt, self.wait))


class RunCancelled(PardagError):
    """The run was cancelled before it finished; ``reason`` says by what."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"run cancelled: {reason}")


class RunTimedOut(PardagError):
    """The run ran past its ``timeout``; the steps still running were stopped."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"run timed out after {timeout:g}s; raise timeout= or make steps faster")
