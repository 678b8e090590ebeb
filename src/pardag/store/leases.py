"""The run queue's SQL: which run a claim takes, and the statements that take, renew and
release a worker's lease. Both SQL backends run them (``pardag.store.sql``); nothing here
does I/O.

A claim is one transaction: pick a run, then take it. SQLite serialises it with ``BEGIN
IMMEDIATE`` (one writer at a time, so no two claims see the same run free); PostgreSQL adds
``FOR UPDATE OF q SKIP LOCKED`` to the pick (``LOCK``), so concurrent claims skip each other's
rows instead of queueing behind them, and re-checks the row's status once it holds the lock.

The fairness rule: runs whose lease expired come first (their worker died and they have waited
longest); then, among queued runs, the organisation served least recently (the latest
``claimed_at`` of any of its runs; an organisation never served counts as the oldest), and its
oldest run. That is round-robin over the organisations with queued runs: one organisation's
thousand queued runs delay another's single run by one claim, not a thousand. (On PostgreSQL,
claims at the very same moment may each pick the same organisation before either commits;
the next claims even it out.)
"""

from __future__ import annotations

from pardag.states import RunStatus
from pardag.store.schema import RUN_COLUMNS

__all__ = [
    "CANCEL_QUEUED",
    "CANCEL_REQUESTS",
    "LOCK",
    "PICK_EXPIRED",
    "PICK_QUEUED",
    "RELEASE",
    "RENEW",
    "REOPEN",
    "REQUEST_CANCEL",
    "REQUEUE",
    "TAKE",
]

_QUEUED = RunStatus.QUEUED.value
_RUNNING = RunStatus.RUNNING.value

PICK_EXPIRED = (
    f"SELECT q.run_id FROM runs q WHERE q.status = '{_RUNNING}' AND q.lease_until IS NOT NULL "
    "AND q.lease_until < ? ORDER BY q.lease_until, q.run_id LIMIT 1"
)
"""A running run whose worker's lease ran out before ``now`` (the parameter)."""

PICK_QUEUED = (
    f"SELECT q.run_id FROM runs q WHERE q.status = '{_QUEUED}' ORDER BY "
    "COALESCE((SELECT MAX(s.claimed_at) FROM runs s WHERE s.org = q.org), 0), "
    "q.created_at, q.run_id LIMIT 1"
)
"""The queued run the fairness rule picks (module docstring)."""

LOCK = " FOR UPDATE OF q SKIP LOCKED"
"""What PostgreSQL appends to a pick: lock the row, skip those another claim holds."""

TAKE = (
    f"UPDATE runs SET status = '{_RUNNING}', worker = ?, lease_until = ?, claimed_at = ?, "
    f"claims = claims + 1 WHERE run_id = ? RETURNING {', '.join(RUN_COLUMNS)}"
)
"""Give the picked run to a worker (worker, lease_until, now, run_id); returns the run."""

RENEW = (
    "UPDATE runs SET lease_until = ? WHERE run_id = ? AND worker = ? "
    "AND lease_until IS NOT NULL RETURNING run_id"
)
"""Extend a lease the worker still holds (lease_until, run_id, worker)."""

RELEASE = (
    "UPDATE runs SET lease_until = NULL WHERE run_id = ? AND worker = ? "
    "AND lease_until IS NOT NULL RETURNING run_id"
)
"""Let go of a lease the worker holds (run_id, worker)."""

CANCEL_QUEUED = (
    f"UPDATE runs SET status = '{RunStatus.CANCELLED.value}', finished_at = ?, error = ? "
    f"WHERE run_id = ? AND status = '{_QUEUED}' RETURNING run_id"
)
"""Cancel a run still queued (finished_at, error, run_id); a claimed one is left alone."""

REQUEST_CANCEL = (
    "UPDATE runs SET cancel_requested = COALESCE(cancel_requested, ?), "
    "cancel_requested_at = COALESCE(cancel_requested_at, ?) WHERE run_id = ? "
    f"AND status = '{_RUNNING}' AND lease_until IS NOT NULL RETURNING run_id"
)
"""Ask the worker holding a run to cancel it (by, now, run_id); only a running run under a
lease, and the first request stays."""

CANCEL_REQUESTS = (
    "SELECT run_id, cancel_requested FROM runs WHERE worker = ? "
    f"AND status = '{_RUNNING}' AND lease_until IS NOT NULL AND cancel_requested IS NOT NULL"
)
"""The runs a worker holds that someone asked to cancel (worker): run id, who asked."""

REQUEUE = (
    f"UPDATE runs SET status = '{_QUEUED}', lease_until = NULL, cancel_requested = NULL, "
    "cancel_requested_at = NULL WHERE run_id = ? "
    f"AND status = '{RunStatus.PAUSED.value}' RETURNING run_id"
)
"""Queue a paused run again, for a worker to go on with it (run_id); only a paused one. A
cancel request the run paused before its worker read is dropped: a paused run is cancelled
at once, not by request."""
REOPEN = (
    "UPDATE runs SET status = ?, settings_json = ?, owner = ?, finished_at = NULL, "
    "error = NULL, lease_until = NULL, claims = 0, cancel_requested = NULL, "
    "cancel_requested_at = NULL WHERE run_id = ? AND status = ? "
    "RETURNING run_id"
)
"""A finished run's new attempt (status, settings_json, owner, run_id, the status it had)."""
