"""What a run gives back: its status, each step's outcome, and the outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pardag.errors import PardagError, StepFailed
from pardag.states import RunStatus, StepState

__all__ = ["Outputs", "RunResult", "StepResult", "StepResults"]


@dataclass(slots=True)
class StepResult:
    """One step's outcome. Times are ``time.time()`` seconds; ``error`` keeps the cause.

    ``cached`` is True when the output was taken from the cache instead of running the step.
    An instance of a mapped step (``process[3]``) names its mapped step as ``parent`` and
    has its ``item``.
    """

    id: str
    state: StepState = StepState.PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: StepFailed | None = None
    reason: str | None = None
    executor: str | None = None
    cached: bool = False
    parent: str | None = None
    item: Any = None

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end, when both happened."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class StepResults(Mapping[str, StepResult]):
    """Each step's ``StepResult`` by id, built on first access.

    A run of a million steps keeps its outcome in flat lists; making a million objects that
    nobody reads would cost more than the run's own bookkeeping.
    """

    def __init__(
        self, ids: Sequence[str], index: Mapping[str, int], make: Callable[[int], StepResult]
    ) -> None:
        self._ids = ids
        self._index = index
        self._make = make
        self._made: dict[int, StepResult] = {}

    def __getitem__(self, step: str) -> StepResult:
        i = self._index[step]
        made = self._made.get(i)
        if made is None:
            made = self._made[i] = self._make(i)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"<StepResults of {len(self)} steps>"


class Outputs(Mapping[str, Any]):
    """The outputs of the steps that succeeded, by id, read from the run's flat lists."""

    def __init__(
        self,
        ids: Sequence[str],
        index: Mapping[str, int],
        values: Sequence[Any],
        state: Sequence[StepState],
    ) -> None:
        self._ids = ids
        self._index = index
        self._values = values
        self._state = state
        self._len: int | None = None

    def __getitem__(self, step: str) -> Any:
        i = self._index[step]
        if self._state[i] is not StepState.SUCCEEDED:
            raise KeyError(step)
        return self._values[i]

    def __iter__(self) -> Iterator[str]:
        state, succeeded = self._state, StepState.SUCCEEDED
        return (sid for i, sid in enumerate(self._ids) if state[i] is succeeded)

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(1 for s in self._state if s is StepState.SUCCEEDED)
        return self._len

    def __repr__(self) -> str:
        return repr(dict(self))


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
    steps: Mapping[str, StepResult]
    outputs: Mapping[str, Any]
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
