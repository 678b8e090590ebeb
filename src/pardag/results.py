"""What a run gives back: its status, each step's outcome, and the outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pardag.errors import PardagError, StepFailed
from pardag.model import StepState

__all__ = ["RunResult", "RunStatus", "StepResult"]


class RunStatus(StrEnum):
    """Where a run is; all but ``running`` and ``paused`` are final."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    PAUSED = "paused"


@dataclass(slots=True)
class StepResult:
    """One step's outcome. Times are ``time.time()`` seconds; ``error`` keeps the cause."""

    id: str
    state: StepState = StepState.PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: StepFailed | None = None
    reason: str | None = None
    executor: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end, when both happened."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(slots=True)
class RunResult:
    """The outcome of ``Workflow.run``.

    ``outputs`` holds the output of every step that succeeded. ``final_output`` is the output
    of the single terminal step (a step nothing depends on), or a mapping by id when there are
    several. ``error`` explains a run that did not succeed and names the step at fault.
    """

    run_id: str
    workflow: str
    status: RunStatus
    steps: dict[str, StepResult]
    outputs: dict[str, Any]
    terminal: tuple[str, ...] = ()
    error: PardagError | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status is RunStatus.SUCCEEDED

    @property
    def final_output(self) -> Any:
        """See the class docstring; a terminal step that did not succeed gives None."""
        if len(self.terminal) == 1:
            return self.outputs.get(self.terminal[0])
        return {t: self.outputs.get(t) for t in self.terminal}

    def raise_for_status(self) -> RunResult:
        """Raise the run's error unless it succeeded; return self so calls can chain."""
        if self.error is not None and not self.ok:
            raise self.error
        return self

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return f"<RunResult {self.workflow!r} {self.status.value}: {summary}>"
