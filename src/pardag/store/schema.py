"""The run store's tables, their versions, and the SQL both backends run over them.

SQLite and PostgreSQL read the very same statements: types are spelled so that both accept
them (``DOUBLE PRECISION``, ``BIGINT``, ``BOOLEAN``), placeholders are ``?`` (the PostgreSQL
backend turns them into ``%s``), upserts use ``ON CONFLICT ... DO UPDATE``. Nothing here does
I/O, so one reading of this file tells what either backend stores.

Columns are named exactly like the fields of the records in ``base.py``: a field added there
needs a migration adding its column (the conformance suite fails until it has one).

Versions: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``, and the table
``pardag_schema`` has one row per version applied. Opening an older database applies what is
missing in one transaction; a newer one is refused untouched. Never edit a migration that was
released: append a new one.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pardag.store import feed, sealed, tenancy, triggers
from pardag.store.base import (
    Answer,
    CacheEntry,
    EventRecord,
    LogRecord,
    RunRecord,
    RunUpdate,
    StepRecord,
    StoreError,
)

__all__ = [
    "MIGRATIONS",
    "MIN_PREFIX",
    "SCHEMA_VERSION",
    "TABLES",
    "Batch",
    "Migration",
    "apply",
    "latest_version",
    "plan",
]


@dataclass(frozen=True)
class Migration:
    """The statements that take a database to ``version``, and why they exist."""

    version: int
    why: str
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "runs, step attempts, events, approval answers and the output cache",
        (
            """CREATE TABLE runs (
                run_id TEXT NOT NULL PRIMARY KEY,
                workflow TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                definition TEXT NOT NULL,
                definition_format TEXT NOT NULL,
                definition_hash TEXT NOT NULL,
                source TEXT,
                settings_json TEXT NOT NULL,
                params_json TEXT NOT NULL,
                finished_at DOUBLE PRECISION,
                error TEXT,
                owner TEXT,
                heartbeat_at DOUBLE PRECISION
            )""",
            "CREATE INDEX runs_by_created ON runs (created_at)",
            "CREATE INDEX runs_by_workflow ON runs (workflow, created_at)",
            "CREATE INDEX runs_by_status ON runs (status, created_at)",
            """CREATE TABLE steps (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                step_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                state TEXT NOT NULL,
                executor TEXT,
                started_at DOUBLE PRECISION,
                finished_at DOUBLE PRECISION,
                output_json TEXT,
                output_stored BOOLEAN NOT NULL,
                error TEXT,
                traceback TEXT,
                reason TEXT,
                cached BOOLEAN NOT NULL,
                PRIMARY KEY (run_id, step_id, attempt)
            )""",
            """CREATE TABLE events (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                seq BIGINT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                step TEXT,
                attempt INTEGER NOT NULL,
                data_json TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            )""",
            "CREATE INDEX events_by_step ON events (run_id, step, seq)",
            """CREATE TABLE answers (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                step_id TEXT NOT NULL,
                decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
                value_json TEXT NOT NULL,
                reason TEXT,
                answered_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (run_id, step_id)
            )""",
            """CREATE TABLE cache (
                key TEXT NOT NULL PRIMARY KEY,
                output_json TEXT NOT NULL,
                stored_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION,
                run_id TEXT,
                step_id TEXT
            )""",
        ),
    ),
    Migration(
        2,
        "each step attempt's log (its output, print() and logging records); each step's place "
        "in the declaration, so that a recorded run lists its steps as they were written",
        (
            """CREATE TABLE logs (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                step_id TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                stream TEXT NOT NULL,
                text TEXT NOT NULL,
                PRIMARY KEY (run_id, step_id, attempt, seq)
            )""",
            "ALTER TABLE steps ADD COLUMN position INTEGER",
        ),
    ),
    Migration(
        3,
        "the processes each step attempt started (pid and start time), so that resume can "
        "make sure none of them still runs before it runs the step again",
        ("ALTER TABLE steps ADD COLUMN processes TEXT",),
    ),
    Migration(
        4,
        "the run queue: each run's organisation and trigger data, and the lease of the worker "
        "that claimed it, so that workers claim queued runs and take over those whose worker died",
        (
            "ALTER TABLE runs ADD COLUMN org TEXT NOT NULL DEFAULT 'default'",
            "ALTER TABLE runs ADD COLUMN trigger_json TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE runs ADD COLUMN worker TEXT",
            "ALTER TABLE runs ADD COLUMN lease_until DOUBLE PRECISION",
            "ALTER TABLE runs ADD COLUMN claimed_at DOUBLE PRECISION",
            "ALTER TABLE runs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX runs_by_org ON runs (org, claimed_at)",
            "CREATE INDEX runs_by_lease ON runs (status, lease_until)",
        ),
    ),
    Migration(
        5,
        "the service's API tokens (hashed) and stored workflows, each in one organisation",
        tenancy.MIGRATION,
    ),
    Migration(
        6,
        "the service's triggers: each stored workflow's webhooks (with their secrets) and "
        "schedules, and the cron slots fired, one row per slot",
        triggers.MIGRATION,
    ),
    Migration(
        7,
        "each organisation's secrets, encrypted with the service's key (never the values)",
        sealed.MIGRATION,
    ),
    Migration(
        8,
        "every event numbered across runs in commit order, so that one stream can follow "
        "all of an organisation's runs and resume after the last event it sent",
        feed.MIGRATION,
    ),
    Migration(
        9,
        "a cancel request on a run a worker holds (who asked, and when), which the worker "
        "reads beside its lease renewals and acts on",
        (
            "ALTER TABLE runs ADD COLUMN cancel_requested TEXT",
            "ALTER TABLE runs ADD COLUMN cancel_requested_at DOUBLE PRECISION",
        ),
    ),
]
"""Every version of the schema, oldest first; append, never edit."""

TABLES = (
    *("runs", "steps", "events", "answers", "cache", "logs"),
    *tenancy.TABLES,
    *triggers.TABLES,
    *sealed.TABLES,
    *feed.TABLES,
    "pardag_schema",
)
"""The tables pardag owns; a database holding some of them but no ``pardag_schema`` is not
one of ours and is never touched."""

MIN_PREFIX = 6
"""The shortest run id prefix ``get_run`` looks up (shorter ones match too much to be safe)."""


def latest_version() -> int:
    """The schema version this pardag writes (that of its last migration)."""
    return MIGRATIONS[-1].version


SCHEMA_VERSION = latest_version()

CREATE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS pardag_schema (
    version INTEGER NOT NULL PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL,
    pardag_version TEXT NOT NULL
)"""
READ_VERSION = "SELECT version, pardag_version FROM pardag_schema ORDER BY version DESC LIMIT 1"


def recorded_version(
    tables: list[str], execute: Callable[[str], Any]
) -> tuple[int, str, list[str]]:
    """(schema version, the pardag that wrote it, ``tables``) of a store whose tables are
    ``tables``: version 0 before ``pardag_schema`` exists or holds a row."""
    if "pardag_schema" not in tables:
        return 0, "", tables
    latest = execute(READ_VERSION).fetchone()
    if latest is None:
        return 0, "", tables
    return int(latest[0]), str(latest[1]), tables


RECORD_VERSION = "INSERT INTO pardag_schema (version, applied_at, pardag_version) VALUES (?, ?, ?)"


# -- migrating ------------------------------------------------------------------------------


def plan(
    version: int,
    writer: str,
    blocking: Collection[str],
    where: str,
    *,
    create: bool,
) -> list[Migration]:
    """The migrations a database at ``version`` (0: no ``pardag_schema``) needs, oldest first.

    ``writer`` is the pardag that wrote that version; ``blocking`` the tables that forbid
    creating a store there (any table, for a SQLite file; one named like ours, for PostgreSQL).
    Raises StoreError, before anything is written, for a newer schema, a database that is not
    ours, or (``create=False``) a database with no store yet.
    """
    latest = latest_version()
    if version > latest:
        raise StoreError(
            f"the run store {where} was written by a newer pardag ({writer}: schema {version}, "
            f"this one knows {latest}); upgrade pardag to use it (it was left untouched)"
        )
    if version == 0 and blocking:
        names = ", ".join(sorted(blocking))
        raise StoreError(
            f"{where} is not a pardag run store: it holds tables ({names}) but no "
            "pardag_schema table, so pardag leaves it alone; point --store (or PARDAG_STORE) "
            "at a new file or at another database or schema"
        )
    if version == 0 and not create:
        raise StoreError(
            f"there is no pardag run store at {where} yet (nothing was recorded there); "
            "check --store (or PARDAG_STORE), or run a workflow to create it"
        )
    return [m for m in MIGRATIONS if m.version > version]


def apply(
    migrations: Sequence[Migration], execute: Callable[[str, Sequence[Any]], object], now: float
) -> None:
    """Run ``migrations`` through ``execute`` (inside the caller's transaction), in order."""
    execute(CREATE_VERSION_TABLE, ())
    for migration in migrations:
        for statement in migration.statements:
            execute(statement, ())
        execute(RECORD_VERSION, (migration.version, now, _pardag_version()))


def _pardag_version() -> str:
    try:
        return "pardag " + importlib.metadata.version("pardag")
    except importlib.metadata.PackageNotFoundError:
        return "pardag (version unknown)"


# -- statements -----------------------------------------------------------------------------


def _columns(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record))


RUN_COLUMNS = _columns(RunRecord)
STEP_COLUMNS = _columns(StepRecord)
EVENT_COLUMNS = _columns(EventRecord)
LOG_COLUMNS = _columns(LogRecord)
ANSWER_COLUMNS = _columns(Answer)
CACHE_COLUMNS = _columns(CacheEntry)
UPDATE_COLUMNS = tuple(c for c in _columns(RunUpdate) if c != "run_id")


def _insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    changes = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return f"{_insert(table, columns)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {changes}"


def _select(table: str, columns: Sequence[str], where: str) -> str:
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {where}"


STEP_KEY = ("run_id", "step_id", "attempt")

INSERT_RUN = _insert("runs", RUN_COLUMNS)
UPSERT_STEP = _upsert("steps", STEP_COLUMNS, STEP_KEY)
INSERT_EVENT = _insert("events", EVENT_COLUMNS)
SELECT_ORG_EVENTS = feed.select_org_events(EVENT_COLUMNS)
SELECT_LAST_GSEQ = "SELECT MAX(gseq) FROM events"
INSERT_LOG = _insert("logs", LOG_COLUMNS)
UPSERT_ANSWER = _upsert("answers", ANSWER_COLUMNS, ("run_id", "step_id"))
UPSERT_CACHE = _upsert("cache", CACHE_COLUMNS, ("key",))

SELECT_RUN = _select("runs", RUN_COLUMNS, "run_id = ?")
SELECT_RUN_PREFIX = _select(
    "runs", RUN_COLUMNS, "substr(run_id, 1, ?) = ? ORDER BY created_at DESC, run_id DESC LIMIT 6"
)
SELECT_STEPS = _select("steps", STEP_COLUMNS, "run_id = ?")
SELECT_EVENTS = _select("events", EVENT_COLUMNS, "run_id = ? AND seq > ? ORDER BY seq")
SELECT_STEP_EVENTS = _select(
    "events", EVENT_COLUMNS, "run_id = ? AND step = ? AND seq > ? ORDER BY seq"
)
SELECT_LOGS = _select(
    "logs",
    LOG_COLUMNS,
    "run_id = ? AND step_id = ? AND (attempt > ? OR (attempt = ? AND seq > ?)) "
    "ORDER BY attempt, seq",
)
SELECT_ANSWERS = _select("answers", ANSWER_COLUMNS, "run_id = ?")
SELECT_DURATIONS = (
    "SELECT step_id, AVG(finished_at - started_at) FROM steps WHERE run_id IN "
    "(SELECT run_id FROM runs WHERE workflow = ? ORDER BY created_at DESC LIMIT ?) "
    "AND state = 'succeeded' AND cached = ? AND started_at IS NOT NULL "
    "AND finished_at IS NOT NULL GROUP BY step_id"
)
"""Each step's mean duration over a workflow's latest runs (succeeded, not from the cache)."""
SELECT_CACHE = _select("cache", CACHE_COLUMNS, "key = ? AND (expires_at IS NULL OR expires_at > ?)")


def list_runs_query(
    workflow: str | None,
    status: str | None,
    since: float | None,
    until: float | None,
    limit: int,
    org: str | None = None,
    before: tuple[float, str] | None = None,
) -> tuple[str, list[Any]]:
    """The statement and parameters for ``Store.list_runs`` (every filter given, ANDed)."""
    filters = (
        ("workflow = ?", workflow),
        ("status = ?", status),
        ("created_at >= ?", since),
        ("created_at < ?", until),
        ("org = ?", org),
    )
    clauses = [clause for clause, value in filters if value is not None]
    params: list[Any] = [value for _, value in filters if value is not None]
    if before is not None:  # the page after a cursor: strictly below it in the listing's order
        clauses.append("(created_at < ? OR (created_at = ? AND run_id < ?))")
        params += [before[0], before[0], before[1]]
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY created_at DESC, run_id DESC"
    if limit > 0:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def run_update(update: RunUpdate) -> tuple[str, list[Any]] | None:
    """The UPDATE applying ``update``'s non-None fields, or None when it changes nothing."""
    changes = [(c, getattr(update, c)) for c in UPDATE_COLUMNS if getattr(update, c) is not None]
    if not changes:
        return None
    assignments = ", ".join(f"{column} = ?" for column, _ in changes)
    params = [value for _, value in changes]
    return f"UPDATE runs SET {assignments} WHERE run_id = ?", [*params, update.run_id]


@dataclass(frozen=True)
class Batch:
    """One statement and its rows for ``executemany``; ``what`` and ``runs`` name it in errors."""

    what: str
    sql: str
    rows: list[tuple[Any, ...]]
    runs: tuple[str, ...]


def write_batches(
    steps: Sequence[StepRecord], events: Sequence[EventRecord], logs: Sequence[LogRecord] = ()
) -> list[Batch]:
    """The batches of ``Store.write`` for steps, events and logs (run updates come separately).

    Several records of one step attempt collapse to the last, the one that must win, so the
    database upserts each key once.
    """
    batches = []
    if steps:
        latest = {(s.run_id, s.step_id, s.attempt): s for s in steps}
        rows = [row(s, STEP_COLUMNS) for s in latest.values()]
        batches.append(Batch("step attempts", UPSERT_STEP, rows, _runs(steps)))
    if events:
        rows = [row(e, EVENT_COLUMNS) for e in events]
        batches.append(Batch("events", INSERT_EVENT, rows, _runs(events)))
    if logs:
        rows = [row(piece, LOG_COLUMNS) for piece in logs]
        batches.append(Batch("step logs", INSERT_LOG, rows, _runs(logs)))
    return batches


def _runs(
    records: Sequence[StepRecord] | Sequence[EventRecord] | Sequence[LogRecord],
) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.run_id for r in records))


def conflict_message(where: str, what: str, runs: Sequence[str], foreign_key: bool) -> str:
    """Why a write broke a constraint, in words: a missing run, or a key already recorded."""
    named = ", ".join(runs[:3]) + (" ..." if len(runs) > 3 else "")
    if foreign_key:
        return (
            f"run store {where}: cannot record {what} of run {named}: the run does not exist "
            "(create_run must record it first)"
        )
    return (
        f"run store {where}: cannot record {what} of run {named}: one of them is already "
        "recorded (each event's seq must be new within its run, each log piece's within its "
        "step attempt)"
    )


def answer_refused(where: str, answer: Answer) -> str:
    """Why an answer may be refused: its run is unknown, or its decision is not one of two."""
    return (
        f"run store {where}: cannot record the answer to step {answer.step_id!r} of run "
        f"{answer.run_id!r}: no such run, or decision {answer.decision!r} is not 'approved' "
        "or 'rejected'"
    )


# -- rows and records -----------------------------------------------------------------------


def row(record: object, columns: Sequence[str]) -> tuple[Any, ...]:
    """The values of ``record`` in ``columns`` order, as parameters of a statement."""
    return tuple(getattr(record, c) for c in columns)


def run_from_row(values: Sequence[Any]) -> RunRecord:
    return RunRecord(*values)


def step_from_row(values: Sequence[Any]) -> StepRecord:
    """SQLite has no boolean type: it gives 0/1 back for ``output_stored`` and ``cached``."""
    step = StepRecord(*values)
    step.output_stored = bool(step.output_stored)
    step.cached = bool(step.cached)
    return step


def event_from_row(values: Sequence[Any]) -> EventRecord:
    return EventRecord(*values)


def log_from_row(values: Sequence[Any]) -> LogRecord:
    return LogRecord(*values)


def answer_from_row(values: Sequence[Any]) -> Answer:
    return Answer(*values)


def cache_from_row(values: Sequence[Any]) -> CacheEntry:
    return CacheEntry(*values)


def step_order(step: StepRecord) -> tuple[str, int]:
    """``get_steps`` order, sorted in Python so that no database collation can change it."""
    return (step.step_id, step.attempt)


def pick_prefix(prefix: str, rows: Sequence[Sequence[Any]], where: str) -> RunRecord | None:
    """The one run ``SELECT_RUN_PREFIX`` found, None for none, StoreError for several."""
    if not rows:
        return None
    if len(rows) == 1:
        return run_from_row(rows[0])
    names = ", ".join(str(r[0]) for r in rows[:5]) + (" and more" if len(rows) > 5 else "")
    raise StoreError(
        f"run id prefix {prefix!r} is ambiguous in {where}: it matches {names}; "
        "give more characters of the run id"
    )
