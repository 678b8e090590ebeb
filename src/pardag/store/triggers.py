"""The service's registered triggers, and the cron slots they fired: schema version 6.

A stored workflow's declared triggers (``pardag.triggers``) are registered per organisation
when it is stored: a webhook with its own secret (the HMAC key its callers sign bodies with,
which the server needs in clear to check a signature: docs/security.md), a schedule with its
cron expression and time zone. ``trigger_firings`` holds one row per (trigger, slot) fired:
its primary key is what lets only one of several workers fire a slot (``CLAIM_SLOT``: an
insert that does nothing on conflict). Both SQL backends run the statements here
(``pardag.store.sql_triggers``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["MIGRATION", "TABLES", "TriggerRecord", "trigger_from_row"]


@dataclass
class TriggerRecord:
    """A registered trigger of ``org``'s stored workflow ``workflow_id``: ``kind`` ``webhook``
    (``name``, ``secret``) or ``cron`` (``cron``, ``timezone``); ``created_at``: no slot before
    it fires."""

    trigger_id: str
    org: str
    workflow_id: str
    kind: str
    name: str | None
    cron: str | None
    timezone: str | None
    secret: str | None
    created_at: float

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        """What a trigger is, apart from its id and secret: a workflow stored again keeps the
        triggers it declares again (their ids, secrets and fired slots)."""
        return (self.kind, self.name, self.cron, self.timezone)


TRIGGER_COLUMNS = tuple(f.name for f in fields(TriggerRecord))

MIGRATION = (
    """CREATE TABLE triggers (
        trigger_id TEXT NOT NULL PRIMARY KEY,
        org TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('webhook', 'cron')),
        name TEXT,
        cron TEXT,
        timezone TEXT,
        secret TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        UNIQUE (org, name)
    )""",
    "CREATE INDEX triggers_by_workflow ON triggers (org, workflow_id)",
    """CREATE TABLE trigger_firings (
        trigger_id TEXT NOT NULL REFERENCES triggers (trigger_id) ON DELETE CASCADE,
        slot DOUBLE PRECISION NOT NULL,
        fired_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (trigger_id, slot)
    )""",
)
"""Schema version 6's statements (``schema.MIGRATIONS``)."""

TABLES = ("triggers", "trigger_firings")

_COLUMNS = ", ".join(TRIGGER_COLUMNS)

INSERT_TRIGGER = (
    f"INSERT INTO triggers ({_COLUMNS}) VALUES ({', '.join('?' * len(TRIGGER_COLUMNS))})"
)
SELECT_WORKFLOW_TRIGGERS = (
    f"SELECT {_COLUMNS} FROM triggers WHERE org = ? AND workflow_id = ? "
    "ORDER BY created_at, trigger_id"
)
SELECT_ORG_TRIGGERS = (
    f"SELECT {_COLUMNS} FROM triggers WHERE org = ? ORDER BY created_at, trigger_id"
)
SELECT_KIND = f"SELECT {_COLUMNS} FROM triggers WHERE kind = ? ORDER BY created_at, trigger_id"
SELECT_WEBHOOK = f"SELECT {_COLUMNS} FROM triggers WHERE org = ? AND name = ? AND kind = 'webhook'"
DELETE_TRIGGER = "DELETE FROM triggers WHERE trigger_id = ?"
DELETE_WORKFLOW_TRIGGERS = "DELETE FROM triggers WHERE org = ? AND workflow_id = ?"
CLAIM_SLOT = (
    "INSERT INTO trigger_firings (trigger_id, slot, fired_at) SELECT ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM triggers WHERE trigger_id = ?) "
    "AND NOT EXISTS (SELECT 1 FROM trigger_firings WHERE trigger_id = ? AND slot >= ?) "
    "ON CONFLICT DO NOTHING RETURNING trigger_id"
)
"""Fire ``slot`` of a trigger that still exists, unless it or a later slot was fired: one
row per (trigger, slot), so two workers claiming one slot at once get one row between them."""
PRUNE_FIRINGS = "DELETE FROM trigger_firings WHERE trigger_id = ? AND slot < ?"
"""Drop the firings older than ``KEEP_FIRINGS`` before the slot just fired."""
KEEP_FIRINGS = 86400.0
"""Seconds of fired slots kept behind the latest. Only the latest decides what fires next, but
a slot's row must outlive any claim of that slot still under way: pruning it at once let a
claimer that waited on it insert it again (PostgreSQL, claimers a slot apart: 209 runs for
200 slots). A day covers any claim in flight, and any worker's lagging clock."""


def trigger_from_row(values: Any) -> TriggerRecord:
    return TriggerRecord(*values)
