"""The shared words of pardag: the states of steps and runs, and the names of settings' values.

Every module that needs one of these words imports it from here, so that each is spelt once:
the scheduler and the runner (``StepState``), results, the run store, history and the command
line (``RunStatus``), settings in Python, files, config files and flags (``Mode``,
``OnFailure``, ``ExecutorName``), and validation (``Trigger``). They are ``StrEnum``s: each
member equals its plain string, which is also how the run store records it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "EXECUTORS",
    "ISOLATIONS",
    "RUN_EXECUTORS",
    "ExecutorName",
    "Mode",
    "OnFailure",
    "RunStatus",
    "StepState",
    "Trigger",
]


class StepState(StrEnum):
    """Where a step is in its life; the last four are final."""

    PENDING = "pending"  # waiting for dependencies
    READY = "ready"  # dependencies final, waiting for a slot
    RUNNING = "running"
    RETRYING = "retrying"  # waiting out a backoff, holding no slot
    PAUSED = "paused"  # waiting for a person's input
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    def is_final(self) -> bool:
        """True once the step will not change state again in this run."""
        return self in _FINAL_STEP


_FINAL_STEP = frozenset(
    {StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED}
)


class RunStatus(StrEnum):
    """Where a run is; all but ``queued``, ``running`` and ``paused`` are final.

    ``queued``: submitted to the run queue, waiting for a worker to claim it (docs/server.md).
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    PAUSED = "paused"

    def is_final(self) -> bool:
        """True once the run will not change status again (``queued``, ``running`` and
        ``paused`` will)."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED)


class Mode(StrEnum):
    """How ready steps are ordered and released; see docs/concepts.md."""

    DYNAMIC = "dynamic"
    LEVELS = "levels"
    SEQUENTIAL = "sequential"


class OnFailure(StrEnum):
    """What a run does when a critical step fails."""

    FAIL_FAST = "fail_fast"
    CONTINUE = "continue"


class Trigger(StrEnum):
    """When a step runs, decided once all its dependencies are final."""

    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    ANY_SUCCESS = "any_success"
    NONE_FAILED = "none_failed"


class ExecutorName(StrEnum):
    """Where a step runs (``pardag.executors`` has one module each)."""

    ASYNC = "async"
    THREADS = "threads"
    PROCESSES = "processes"
    INLINE = "inline"
    DASK = "dask"


ISOLATIONS = ("process",)
"""The values of a step's ``isolation`` (on ``dask``): ``process``, a subprocess per attempt."""
EXECUTORS: tuple[ExecutorName, ...] = tuple(ExecutorName)
"""Every executor a step may name."""
RUN_EXECUTORS: tuple[ExecutorName, ...] = (
    ExecutorName.THREADS,
    ExecutorName.PROCESSES,
    ExecutorName.INLINE,
    ExecutorName.DASK,
)
"""The executors a run-wide ``executor`` setting may name (``async`` needs ``async def``)."""
