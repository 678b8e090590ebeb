"""The SQL backends' registered triggers and cron firings (``store.triggers``' statements).

A part of ``SQLStore`` kept apart so that each file holds one concept: ``SQLStore`` inherits
it, and provides the ``_write``/``_fetch``/``_execute``/``_read`` it runs statements with.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pardag.store import schema
from pardag.store import triggers as sql
from pardag.store.base import Store
from pardag.store.triggers import TriggerRecord

__all__ = ["TriggerTables"]

T = TypeVar("T")


class TriggerTables(Store):
    """``Store``'s trigger methods over the shared SQL (not a store by itself)."""

    @abstractmethod
    def _write(self, doing: str, work: Callable[[Any], T]) -> T: ...

    @abstractmethod
    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]: ...

    @abstractmethod
    def _execute(self, conn: Any, sql: str, params: Sequence[Any], refused: str) -> None: ...

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    def set_triggers(
        self, org: str, workflow_id: str, wanted: Sequence[TriggerRecord]
    ) -> list[TriggerRecord]:
        def sync(conn: Any) -> list[TriggerRecord]:
            rows = self._fetch(conn, sql.SELECT_WORKFLOW_TRIGGERS, (org, workflow_id))
            had = {t.key: t for t in map(sql.trigger_from_row, rows)}
            keys = {t.key for t in wanted}
            for gone in (t for key, t in had.items() if key not in keys):
                self._execute(conn, sql.DELETE_TRIGGER, (gone.trigger_id,), "")
            made = [t for t in wanted if t.key not in had]
            for trigger in made:
                refused = (
                    f"run store {self.url}: webhook {trigger.name!r} belongs to another "
                    f"workflow of {org!r}; rename it, or delete that workflow"
                )
                row = self._row(schema.row(trigger, sql.TRIGGER_COLUMNS))
                self._execute(conn, sql.INSERT_TRIGGER, row, refused)
            return made

        return self._write("registering triggers", sync)

    def _row(self, row: Sequence[Any]) -> Sequence[Any]:
        return row

    def list_triggers(self, org: str, workflow_id: str | None = None) -> list[TriggerRecord]:
        if workflow_id is None:
            rows = self._read(sql.SELECT_ORG_TRIGGERS, (org,))
        else:
            rows = self._read(sql.SELECT_WORKFLOW_TRIGGERS, (org, workflow_id))
        return [sql.trigger_from_row(r) for r in rows]

    def schedules(self) -> list[TriggerRecord]:
        return [sql.trigger_from_row(r) for r in self._read(sql.SELECT_KIND, ("cron",))]

    def webhook(self, org: str, name: str) -> TriggerRecord | None:
        rows = self._read(sql.SELECT_WEBHOOK, (org, name))
        return sql.trigger_from_row(rows[0]) if rows else None

    def claim_slot(self, trigger_id: str, slot: float, now: float) -> bool:
        def claim(conn: Any) -> bool:
            params = (trigger_id, slot, now, trigger_id, trigger_id, slot)
            if not self._fetch(conn, sql.CLAIM_SLOT, params):
                return False
            self._execute(conn, sql.PRUNE_FIRINGS, (trigger_id, slot - sql.KEEP_FIRINGS), "")
            return True

        return self._write("claiming a cron slot", claim)
