"""What ``GET /metrics`` counts, read from the runs and steps tables: one organisation's runs
by status, the workers holding or lately claiming its runs, and how long its recent steps took.
Both SQL backends run the statements here (``pardag.store.sql``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pardag.states import RunStatus, StepState

__all__ = ["COUNT_BY_STATUS", "RECENT_DURATIONS", "WORKERS", "OrgStats", "WorkerStats"]


@dataclass(frozen=True)
class WorkerStats:
    """A worker as one organisation sees it: ``holding`` its runs under lease now,
    ``claimed`` its runs whose latest claim was this worker's within the window."""

    worker: str
    holding: int
    claimed: int


@dataclass(frozen=True)
class OrgStats:
    """One organisation's figures: ``runs`` by status; ``workers``; ``durations``, the
    seconds each step attempt that ran (succeeded or failed, not a cache hit) took in its
    latest finished runs."""

    runs: dict[str, int] = field(default_factory=dict)
    workers: tuple[WorkerStats, ...] = ()
    durations: tuple[float, ...] = ()


_RUNNING = RunStatus.RUNNING.value
_RAN = (StepState.SUCCEEDED.value, StepState.FAILED.value)

COUNT_BY_STATUS = "SELECT status, COUNT(*) FROM runs WHERE org = ? GROUP BY status"
"""The organisation's runs by status (org)."""

WORKERS = (
    f"SELECT worker, SUM(CASE WHEN status = '{_RUNNING}' AND lease_until IS NOT NULL "
    "THEN 1 ELSE 0 END), SUM(CASE WHEN claimed_at >= ? THEN 1 ELSE 0 END) FROM runs "
    "WHERE org = ? AND worker IS NOT NULL AND (lease_until IS NOT NULL OR claimed_at >= ?) "
    "GROUP BY worker ORDER BY worker"
)
"""Each worker holding one of the organisation's runs, or that claimed one since the window's
start (since, org, since): a worker long gone is not listed for ever."""

RECENT_DURATIONS = (
    "SELECT s.finished_at - s.started_at FROM steps s WHERE s.run_id IN "
    "(SELECT r.run_id FROM runs r WHERE r.org = ? AND r.finished_at IS NOT NULL "
    "ORDER BY r.created_at DESC LIMIT ?) "
    f"AND s.state IN ('{_RAN[0]}', '{_RAN[1]}') AND s.cached = ? "
    "AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL"
)
"""The durations of the step attempts that ran in the organisation's latest finished runs
(org, how many runs, False)."""
