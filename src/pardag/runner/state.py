"""What a run knows while it runs, and the messages that change it.

``RunState`` is the one mutable record of a run beside the scheduler's bookkeeping; only the
``Runner`` writes it. Everything that happens elsewhere (an executor finishing an attempt, a
timer, the journal answering a cache lookup, a worker thread moving on to the next step of a
chain) reaches the runner as one of the messages below, through one inbox, and the runner's
``_settle`` applies it. Per-step facts live in flat lists indexed by step number: a run of a
million steps keeps no object per step.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pardag.clock import Timer
from pardag.errors import PardagError, RunCancelled, RunTimedOut, StepFailed
from pardag.model import Graph
from pardag.states import RunStatus, StepState

__all__ = [
    "Abandon",
    "CacheAnswer",
    "Ended",
    "Handoff",
    "Message",
    "RateWake",
    "Requeue",
    "RunState",
    "Skip",
    "Stop",
    "Unpause",
]

_ZERO = (0.0,)
SUCCEEDED = StepState.SUCCEEDED


class Ended(NamedTuple):
    """An attempt's future completed: success, failure or cancellation (or a detached thread
    that was settled already ended, freeing its slot)."""

    step: int
    future: asyncio.Future[Any]


class Skip(NamedTuple):
    """The step's ``when`` was false: it is skipped."""

    step: int


class Abandon(NamedTuple):
    """A step on a thread timed out or was cancelled; the thread cannot be stopped, so the
    step is settled now and its slot stays taken until the thread ends."""

    step: int


class Requeue(NamedTuple):
    """A retrying step's backoff is over: it competes for a slot again."""

    step: int


class Unpause(NamedTuple):
    """A paused step's wait for an answer timed out: it runs again to apply its timeout."""

    step: int


class RateWake(NamedTuple):
    """A rate-limited pool earned its next token: its waiting steps may start."""


class CacheAnswer(NamedTuple):
    """The journal looked the step's cache key up: a hit, a miss, or the store's error."""

    step: int
    inputs: dict[str, Any]
    hit: bool
    output: Any
    error: BaseException | None


class Handoff(NamedTuple):
    """A step on a thread succeeded (``done`` holds its output) and its worker went on with
    ``next_step`` (a chain), whose end ``future`` will report."""

    step: int
    done: asyncio.Future[Any]
    next_step: int
    future: asyncio.Future[Any]
    started: float


Message = Ended | Skip | Abandon | Requeue | Unpause | RateWake | CacheAnswer | Handoff


class Stop(NamedTuple):
    """Why the run is stopping: the status it ends with, its error, and the reason given to
    the steps it cancels. One constructor per way a run stops."""

    status: RunStatus
    error: PardagError
    reason: str

    @classmethod
    def cancelled(cls, by: str) -> Stop:
        """Cancelled ``by`` someone (``"Ctrl-C"``, ``"`pardag cancel`"``, ``Runner.cancel``'s
        caller): each cancelled step's reason says by what."""
        return cls(RunStatus.CANCELLED, RunCancelled(f"by {by}"), f"cancelled by {by}")

    @classmethod
    def timed_out(cls, limit: float) -> Stop:
        """The run ran past its ``timeout``."""
        return cls(RunStatus.TIMED_OUT, RunTimedOut(limit), f"run timed out after {limit:g}s")

    @classmethod
    def failed_at(cls, error: StepFailed) -> Stop:
        """A critical step failed under fail-fast."""
        return cls(
            RunStatus.FAILED, error, f"cancelled: fail-fast after step {error.step!r} failed"
        )

    @classmethod
    def store_failed(cls, exc: BaseException) -> Stop:
        """A commit failed: the run cannot keep its promises."""
        error = PardagError(f"the run store failed, so the run stopped: {exc}")
        return cls(RunStatus.FAILED, error, "run stopped: the run store failed")


@dataclass(slots=True)
class RunState:
    """Per-step outcomes and what is in flight; see the module docstring."""

    outputs: list[Any]
    attempts: list[int]
    started: array[float]  # time(); 0.0 while not yet
    finished: array[float]
    errors: dict[int, StepFailed] = field(default_factory=dict)
    cached: set[int] = field(default_factory=set)  # outputs taken from the cache
    kept: set[int] = field(default_factory=set)  # final in an earlier process of this run
    futures: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    timers: dict[int, Timer] = field(default_factory=dict)  # step timeouts
    timed_out: set[int] = field(default_factory=set)
    no_retry: set[int] = field(default_factory=set)  # failed by the workflow's own mistake
    detached: dict[asyncio.Future[Any], int] = field(default_factory=dict)  # -> slot token
    stop: Stop | None = None
    first_failure: StepFailed | None = None
    paused: bool = False  # only steps waiting for an answer were left

    @classmethod
    def of(cls, steps: int) -> RunState:
        """The state of a run of ``steps`` steps before anything happened."""
        return cls(
            [None] * steps, [0] * steps, array("d", _ZERO) * steps, array("d", _ZERO) * steps
        )

    def begin_attempt(self, i: int, now: float) -> None:
        """Count step ``i``'s next attempt; its first one stamps its start."""
        self.attempts[i] += 1
        if not self.started[i]:
            self.started[i] = now

    def inputs(self, i: int, graph: Graph, states: Sequence[StepState]) -> dict[str, Any]:
        """Step ``i``'s inputs: the outputs of its dependencies that succeeded, by id."""
        preds = graph.preds[i]
        if not preds:
            return {}
        ids, out = graph.ids, self.outputs
        return {ids[p]: out[p] for p in preds if states[p] is SUCCEEDED}
