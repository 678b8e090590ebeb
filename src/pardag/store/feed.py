"""The global event sequence: every event numbered across runs, in the order it was committed.

Events are numbered per run (``seq``); ``GET /api/events`` follows every run of an
organisation, so it needs one number for all of them that a client can resume after. Each
``write`` that records events takes its numbers from the one-row table ``event_clock``
(``UPDATE ... RETURNING``) inside its transaction. That row stays locked until the commit, so
writes with events commit in the order of their numbers: a reader never sees number N+1
before N, and ``gseq > last`` misses nothing (a plain sequence would let a later number
commit first). SQLite serialises writers anyway; on PostgreSQL it costs one row lock per
group commit. Events recorded before this schema get numbers in the order they happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "CHANNEL",
    "MIGRATION",
    "TABLES",
    "TAKE",
    "numbered",
    "select_org_events",
]

MIGRATION = (
    "ALTER TABLE events ADD COLUMN gseq BIGINT",
    "UPDATE events SET gseq = numbered.n FROM (SELECT run_id AS r, seq AS s, ROW_NUMBER() OVER "
    "(ORDER BY at, run_id, seq) AS n FROM events) AS numbered "
    "WHERE events.run_id = numbered.r AND events.seq = numbered.s",
    "CREATE UNIQUE INDEX events_by_gseq ON events (gseq)",
    "CREATE TABLE event_clock (id INTEGER NOT NULL PRIMARY KEY, last BIGINT NOT NULL)",
    "INSERT INTO event_clock (id, last) SELECT 1, COALESCE(MAX(gseq), 0) FROM events",
)
"""The statements of the schema version that numbers events globally (``schema.MIGRATIONS``)."""

TABLES = ("event_clock",)

TAKE = "UPDATE event_clock SET last = last + ? WHERE id = 1 RETURNING last"
"""Take ``n`` numbers: the last one comes back; the row stays locked until the commit."""

CHANNEL = "pardag_events"
"""The PostgreSQL ``NOTIFY`` channel a write with events announces its runs on."""


def numbered(rows: Sequence[tuple[Any, ...]], last: int) -> list[tuple[Any, ...]]:
    """``rows`` of ``INSERT_EVENT`` (``gseq`` last, None) numbered, ``last`` the final number."""
    first = last - len(rows) + 1
    return [(*r[:-1], first + i) for i, r in enumerate(rows)]


def select_org_events(columns: Sequence[str]) -> str:
    """The events of one organisation's runs numbered above a given one, oldest first."""
    picked = ", ".join(f"e.{c}" for c in columns)
    return (
        f"SELECT {picked} FROM events e JOIN runs r ON r.run_id = e.run_id "
        "WHERE r.org = ? AND e.gseq > ? ORDER BY e.gseq LIMIT ?"
    )
