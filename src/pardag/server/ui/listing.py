"""The runs list's filters and pages: what the store filters, and what is filtered here.

The store filters by workflow, status and time range and pages by ``(created_at, run_id)``;
the trigger (what started a run) and the search words are checked here, over the store's
pages, until a page of the list is full. A filter matching few runs among many reads at most
``SCAN`` runs per page of the list and then says how far it looked, rather than reading the
whole store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pardag.history import check_status
from pardag.recording import service_origin
from pardag.server.errors import ApiError
from pardag.server.routes_runs import after_cursor, cursor_of, time_of
from pardag.store.base import RunRecord, Store

__all__ = ["PAGE", "SCAN", "TRIGGERS", "Filters", "Listing", "list_runs", "trigger_of"]

PAGE = 50
"""Runs per page of the list."""
SCAN = 5000
"""Runs read from the store at most for one page of the list."""
BATCH = 200
"""Runs per read of the store."""
TRIGGERS = ("api", "webhook", "schedule", "command line")
"""What may start a run, as the list's trigger filter names it."""
_FIELDS = ("q", "status", "workflow", "trigger", "since", "until")


@dataclass
class Filters:
    """The list's query: each field as the URL gives it ('' for none)."""

    q: str = ""
    status: str = ""
    workflow: str = ""
    trigger: str = ""
    since: str = ""
    until: str = ""
    cursor: str = ""

    @classmethod
    def of(cls, query: Any) -> Filters:
        return cls(**{name: str(query.get(name, "")).strip() for name in (*_FIELDS, "cursor")})

    def query(self, **changed: str) -> str:
        """This query string with ``changed`` fields (empty ones left out)."""
        values = {name: getattr(self, name) for name in (*_FIELDS, "cursor")} | changed
        return urlencode({k: v for k, v in values.items() if v})

    def active(self) -> bool:
        return any(getattr(self, name) for name in _FIELDS)


@dataclass
class Listing:
    """A page of runs, the cursor of the next page, and whether the scan stopped early."""

    runs: list[RunRecord] = field(default_factory=list)
    next_cursor: str | None = None
    scanned_out: bool = False


def trigger_of(record: RunRecord) -> str:
    """What started a run: ``api``, ``webhook``, ``schedule`` or ``command line``."""
    return service_origin(record) or "command line"


def list_runs(store: Store, org: str, filters: Filters) -> Listing:
    """The page of ``org``'s runs that ``filters`` asks for, newest first."""
    _check(filters)
    start = time_of(filters.since) if filters.since else None
    end = _until(filters.until) if filters.until else None
    before = after_cursor(filters.cursor) if filters.cursor else None
    out, scanned = Listing(), 0
    while scanned < SCAN:
        batch = store.list_runs(
            workflow=filters.workflow or None,
            status=filters.status or None,
            since=start,
            until=end,
            org=org,
            before=before,
            limit=BATCH,
        )
        scanned += len(batch)
        for record in batch:
            if _keeps(record, filters):
                if len(out.runs) == PAGE:
                    out.next_cursor = cursor_of(out.runs[-1])
                    return out
                out.runs.append(record)
        if len(batch) < BATCH:
            return out  # the store has no more: no read to learn it
        before = (batch[-1].created_at, batch[-1].run_id)
    out.scanned_out = True
    if out.runs:
        out.next_cursor = cursor_of(out.runs[-1])
    return out


def _check(filters: Filters) -> None:
    check_status(filters.status or None, "status")
    if filters.trigger and filters.trigger not in TRIGGERS:
        raise ApiError(
            400, "bad_trigger", f"trigger={filters.trigger!r}: give one of {', '.join(TRIGGERS)}"
        )


def _until(text: str) -> float:
    try:
        return time_of(text)
    except ApiError:
        raise ApiError(
            400,
            "bad_until",
            f"until={text!r} is no time: give an ISO 8601 time (2026-12-03T14:00) or seconds "
            "since the epoch",
        ) from None


def _keeps(record: RunRecord, filters: Filters) -> bool:
    if filters.trigger and trigger_of(record) != filters.trigger:
        return False
    return not filters.q or _matches(record, filters.q)


def _matches(record: RunRecord, words: str) -> bool:
    """Every word of the search is in the run's id, workflow, status, error or params."""
    text = " ".join(
        [record.run_id, record.workflow, record.status, record.error or "", record.params_json]
    ).lower()
    return all(word in text for word in words.lower().split())
