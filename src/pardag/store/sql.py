"""What SQL backends share: the reading side of ``Store``, over one ``_read`` each.

The statements and row mappings live in ``schema``; a backend only says how to run a query
(``_read``: its own connection handling, placeholders and retries).
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pardag.states import RunStatus
from pardag.store import feed, leases, schema, sealed, stats, tenancy
from pardag.store import triggers as trigger_sql
from pardag.store.base import (
    Answer,
    CacheEntry,
    EventRecord,
    LogRecord,
    OrgStats,
    RunRecord,
    RunUpdate,
    SecretInfo,
    StepRecord,
    StoredWorkflow,
    StoreError,
    TokenRecord,
)
from pardag.store.sql_triggers import TriggerTables

__all__ = ["SQLStore"]

T = TypeVar("T")


class SQLStore(TriggerTables):
    """A ``Store`` over the shared SQL of ``schema``: the backends say how to run it."""

    _lock: str = ""
    """What a claim's pick appends to lock the row it picks (``leases.LOCK``), if anything."""

    @abstractmethod
    def _write(self, doing: str, work: Callable[[Any], T]) -> T:
        """Run ``work(connection)`` in one transaction, committed before returning its result."""

    @abstractmethod
    def _fetch(self, conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one statement (``?`` placeholders) run on ``conn`` (inside ``_write``)."""

    @abstractmethod
    def _execute(self, conn: Any, sql: str, params: Sequence[Any], refused: str) -> None:
        """Execute one statement; a broken constraint is a StoreError saying ``refused``."""

    @abstractmethod
    def _apply(
        self,
        conn: Any,
        batches: list[schema.Batch],
        updates: list[tuple[str, tuple[str, list[Any]]]],
    ) -> None:
        """Insert ``batches`` and apply ``updates`` on ``conn`` (inside ``_write``)."""

    def _row(self, row: Sequence[Any]) -> Sequence[Any]:
        """A row as the backend can store it (values it cannot hold replaced)."""
        return row

    # -- writing --------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        row = self._row(schema.row(run, schema.RUN_COLUMNS))
        taken = (
            f"run store {self.url}: a run with id {run.run_id!r} already exists; "
            "give the new run another id"
        )
        self._write(
            "recording a new run", lambda c: self._execute(c, schema.INSERT_RUN, row, taken)
        )

    def write(
        self,
        *,
        runs: Sequence[RunUpdate] = (),
        steps: Sequence[StepRecord] = (),
        events: Sequence[EventRecord] = (),
        logs: Sequence[LogRecord] = (),
    ) -> None:
        batches = schema.write_batches(steps, events, logs)
        updates = [(u.run_id, q) for u in runs if (q := schema.run_update(u)) is not None]
        if batches or updates:
            self._write("recording run progress", lambda c: self._progress(c, batches, updates))

    def _progress(
        self,
        conn: Any,
        batches: list[schema.Batch],
        updates: list[tuple[str, tuple[str, list[Any]]]],
    ) -> None:
        """``write``'s transaction: events take their global numbers (``store.feed``)."""
        numbered = [self._numbered(conn, b) if b.sql == schema.INSERT_EVENT else b for b in batches]
        self._apply(conn, numbered, updates)
        events = [b for b in batches if b.sql == schema.INSERT_EVENT]
        if events:
            self._announce(conn, events[0].runs)

    def _numbered(self, conn: Any, batch: schema.Batch) -> schema.Batch:
        last = int(self._fetch(conn, feed.TAKE, (len(batch.rows),))[0][0])
        rows = feed.numbered(batch.rows, last)
        return schema.Batch(batch.what, batch.sql, rows, batch.runs)

    def _announce(self, conn: Any, runs: tuple[str, ...]) -> None:
        """Tell other processes, at the commit, that ``runs`` have new events (PostgreSQL
        ``NOTIFY``); a backend that cannot leaves its readers to poll."""

    def put_answer(self, answer: Answer) -> None:
        row = self._row(schema.row(answer, schema.ANSWER_COLUMNS))
        refused = schema.answer_refused(self.url, answer)
        self._write(
            "recording an answer",
            lambda c: self._execute(c, schema.UPSERT_ANSWER, row, refused),
        )

    # -- the run queue --------------------------------------------------------------------

    def enqueue(self, run: RunRecord) -> str:
        if run.status != RunStatus.QUEUED:
            raise StoreError(
                f"run store {self.url}: cannot queue run {run.run_id!r}: its status is "
                f"{run.status!r}, and a run enters the queue as 'queued'"
            )
        self.create_run(run)
        return run.run_id

    def claim(self, worker: str, lease: float, now: float) -> RunRecord | None:
        def take(conn: Any) -> RunRecord | None:
            for pick, params in ((leases.PICK_EXPIRED, (now,)), (leases.PICK_QUEUED, ())):
                picked = self._fetch(conn, pick + self._lock, params)
                if picked:
                    row = self._fetch(conn, leases.TAKE, (worker, now + lease, now, picked[0][0]))
                    return schema.run_from_row(row[0])
            return None

        return self._write("claiming a queued run", take)

    def renew(self, run_id: str, worker: str, lease: float, now: float) -> bool:
        params = (now + lease, run_id, worker)
        return bool(self._write("renewing a lease", lambda c: self._fetch(c, leases.RENEW, params)))

    def cancel_queued(self, run_id: str, now: float, error: str) -> bool:
        params = (now, error, run_id)
        return bool(
            self._write(
                "cancelling a queued run", lambda c: self._fetch(c, leases.CANCEL_QUEUED, params)
            )
        )

    def request_cancel(self, run_id: str, by: str, now: float) -> bool:
        params = (by, now, run_id)
        return bool(
            self._write(
                "requesting a run's cancel", lambda c: self._fetch(c, leases.REQUEST_CANCEL, params)
            )
        )

    def cancel_requests(self, worker: str) -> dict[str, str]:
        return {str(r[0]): str(r[1]) for r in self._read(leases.CANCEL_REQUESTS, (worker,))}

    def requeue(self, run_id: str) -> bool:
        return bool(
            self._write("requeueing a run", lambda c: self._fetch(c, leases.REQUEUE, (run_id,)))
        )

    def release(self, run_id: str, worker: str) -> bool:
        params = (run_id, worker)
        return bool(
            self._write("releasing a lease", lambda c: self._fetch(c, leases.RELEASE, params))
        )

    # -- tokens and stored workflows --------------------------------------------------------

    def create_token(self, token: TokenRecord) -> None:
        row = self._row(schema.row(token, tenancy.TOKEN_COLUMNS))
        refused = f"run store {self.url}: cannot record token {token.token_id!r}"
        self._write(
            "recording a token", lambda c: self._execute(c, tenancy.INSERT_TOKEN, row, refused)
        )

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        rows = self._read(tenancy.SELECT_TOKEN_BY_HASH, (token_hash,))
        return tenancy.token_from_row(rows[0]) if rows else None

    def list_tokens(self, org: str | None = None) -> list[TokenRecord]:
        if org is None:
            return [tenancy.token_from_row(r) for r in self._read(tenancy.SELECT_TOKENS, ())]
        rows = self._read(tenancy.SELECT_ORG_TOKENS, (org,))
        return [tenancy.token_from_row(r) for r in rows]

    def revoke_token(self, token_id: str, now: float) -> bool:
        params = (now, token_id)
        return bool(
            self._write("revoking a token", lambda c: self._fetch(c, tenancy.REVOKE_TOKEN, params))
        )

    def put_workflow(
        self, org: str, name: str, format: str, definition: str, now: float
    ) -> StoredWorkflow:
        def store(conn: Any) -> StoredWorkflow:
            latest = self._fetch(conn, tenancy.LATEST_OF_NAME, (org, name))
            workflow_id, version = latest[0] if latest else (uuid.uuid4().hex[:16], 0)
            stored = StoredWorkflow(
                str(workflow_id), int(version) + 1, org, name, format, definition, now
            )
            refused = (
                f"run store {self.url}: workflow {name!r} got a new version from another "
                "request at the same moment; send it again"
            )
            row = self._row(schema.row(stored, tenancy.WORKFLOW_COLUMNS))
            self._execute(conn, tenancy.INSERT_WORKFLOW, row, refused)
            return stored

        return self._write("storing a workflow", store)

    def workflow_versions(self, org: str, workflow_id: str) -> list[StoredWorkflow]:
        rows = self._read(tenancy.SELECT_VERSIONS, (org, workflow_id))
        return [tenancy.workflow_from_row(r) for r in rows]

    def list_workflows(self, org: str) -> list[StoredWorkflow]:
        return [tenancy.workflow_from_row(r) for r in self._read(tenancy.SELECT_LATEST, (org,))]

    def delete_workflow(self, org: str, workflow_id: str) -> bool:
        params = (org, workflow_id)

        def delete(conn: Any) -> bool:
            self._execute(conn, trigger_sql.DELETE_WORKFLOW_TRIGGERS, params, "")
            return bool(self._fetch(conn, tenancy.DELETE_WORKFLOW, params))

        return self._write("deleting a workflow", delete)

    # -- organisations' secrets, sealed -----------------------------------------------------

    def put_secret(self, org: str, name: str, ciphertext: str, now: float) -> bool:
        params = (org, name, ciphertext, now, now)
        rows = self._write(
            "storing a secret", lambda c: self._fetch(c, sealed.UPSERT_SECRET, params)
        )
        return bool(rows) and float(rows[0][0]) == now

    def secret_ciphertext(self, org: str, name: str | None) -> str | None:
        if name is None:
            rows = self._read(sealed.SELECT_ANY_CIPHERTEXT, (org,))
        else:
            rows = self._read(sealed.SELECT_CIPHERTEXT, (org, name))
        return str(rows[0][0]) if rows else None

    def list_secrets(self, org: str) -> list[SecretInfo]:
        return [sealed.info_from_row(r) for r in self._read(sealed.SELECT_INFOS, (org,))]

    def delete_secret(self, org: str, name: str) -> bool:
        params = (org, name)
        return bool(
            self._write("deleting a secret", lambda c: self._fetch(c, sealed.DELETE_SECRET, params))
        )

    def reopen(
        self, run_id: str, was: str, status: str, settings_json: str, owner: str | None
    ) -> bool:
        if status not in (RunStatus.RUNNING, RunStatus.QUEUED):
            raise StoreError(
                f"run store {self.url}: cannot reopen run {run_id!r} as {status!r}: a run is "
                "reopened as 'running' or 'queued'"
            )
        params = (status, settings_json, owner, run_id, was)
        return bool(
            self._write("reopening a finished run", lambda c: self._fetch(c, leases.REOPEN, params))
        )

    # -- reading --------------------------------------------------------------------------

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
        org: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        sql, params = schema.list_runs_query(workflow, status, since, until, limit, org, before)
        return [schema.run_from_row(r) for r in self._read(sql, params)]

    def get_steps(self, run_id: str) -> list[StepRecord]:
        steps = [schema.step_from_row(r) for r in self._read(schema.SELECT_STEPS, (run_id,))]
        return sorted(steps, key=schema.step_order)

    def get_events(self, run_id: str, step: str | None = None, after: int = 0) -> list[EventRecord]:
        if step is None:
            rows = self._read(schema.SELECT_EVENTS, (run_id, after))
        else:
            rows = self._read(schema.SELECT_STEP_EVENTS, (run_id, step, after))
        return [schema.event_from_row(r) for r in rows]

    def org_events(self, org: str, after: int = 0, limit: int = 500) -> list[EventRecord]:
        rows = self._read(schema.SELECT_ORG_EVENTS, (org, after, limit))
        return [schema.event_from_row(r) for r in rows]

    def last_gseq(self) -> int:
        rows = self._read(schema.SELECT_LAST_GSEQ, ())
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def get_logs(
        self, run_id: str, step_id: str, after: tuple[int, int] = (0, 0)
    ) -> list[LogRecord]:
        attempt, seq = after
        rows = self._read(schema.SELECT_LOGS, (run_id, step_id, attempt, attempt, seq))
        return [schema.log_from_row(r) for r in rows]

    def step_durations(self, workflow: str, runs: int = 10) -> dict[str, float]:
        rows = self._read(schema.SELECT_DURATIONS, (workflow, runs, False))
        return {str(step): float(mean) for step, mean in rows if mean is not None}

    def org_stats(self, org: str, since: float, recent: int = 100) -> OrgStats:
        by_status = {str(st): int(n) for st, n in self._read(stats.COUNT_BY_STATUS, (org,))}
        workers = tuple(
            stats.WorkerStats(str(w), int(held or 0), int(claimed or 0))
            for w, held, claimed in self._read(stats.WORKERS, (since, org, since))
        )
        rows = self._read(stats.RECENT_DURATIONS, (org, recent, False))
        return OrgStats(by_status, workers, tuple(float(d) for (d,) in rows if d is not None))

    def get_answers(self, run_id: str) -> dict[str, Answer]:
        answers = map(schema.answer_from_row, self._read(schema.SELECT_ANSWERS, (run_id,)))
        return {a.step_id: a for a in answers}

    def get_cache(self, key: str, now: float) -> CacheEntry | None:
        rows = self._read(schema.SELECT_CACHE, (key, now))
        return schema.cache_from_row(rows[0]) if rows else None
