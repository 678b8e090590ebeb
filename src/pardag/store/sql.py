"""What SQL backends share: the reading side of ``Store``, over one ``_read`` each.

The statements and row mappings live in ``schema``; a backend only says how to run a query
(``_read``: its own connection handling, placeholders and retries).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from pardag.store import schema
from pardag.store.base import Answer, CacheEntry, EventRecord, RunRecord, StepRecord, Store

__all__ = ["SQLStore"]


class SQLStore(Store):
    """A ``Store`` whose reads are the shared SQL of ``schema``."""

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows ``sql`` (written with ``?`` placeholders) returns for ``params``."""

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._read(schema.SELECT_RUN, (run_id,))
        if rows:
            return schema.run_from_row(rows[0])
        if len(run_id) < schema.MIN_PREFIX:
            return None
        rows = self._read(schema.SELECT_RUN_PREFIX, (len(run_id), run_id))
        return schema.pick_prefix(run_id, rows, self.url)

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        sql, params = schema.list_runs_query(workflow, status, since, until, limit)
        return [schema.run_from_row(r) for r in self._read(sql, params)]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        steps = [schema.step_from_row(r) for r in self._read(schema.SELECT_STEPS, (run_id,))]
        return sorted(steps, key=schema.step_order)

    def get_events(self, run_id: str, step: str | None = None) -> list[EventRecord]:
        if step is None:
            rows = self._read(schema.SELECT_EVENTS, (run_id,))
        else:
            rows = self._read(schema.SELECT_STEP_EVENTS, (run_id, step))
        return [schema.event_from_row(r) for r in rows]

    def get_answers(self, run_id: str) -> dict[str, Answer]:
        answers = map(schema.answer_from_row, self._read(schema.SELECT_ANSWERS, (run_id,)))
        return {a.step_id: a for a in answers}

    def get_cache(self, key: str, now: float) -> CacheEntry | None:
        rows = self._read(schema.SELECT_CACHE, (key, now))
        return schema.cache_from_row(rows[0]) if rows else None
