"""The PostgreSQL run store: the same tables as SQLite, in the database the URL names.

The tables go into the first schema of the connection's ``search_path`` (``public`` unless
the URL says ``?options=-csearch_path%3Dpardag``). Connections run in autocommit mode and are
lent out one operation at a time from a small pool, so threads never share a transaction;
``write`` is one transaction, durable when the server acknowledges its commit. Migrations
take an advisory lock, so processes opening a new database at once create it once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from pardag.store import leases, notify, schema
from pardag.store.base import (
    CacheEntry,
    EventListener,
    StoreError,
    mask_url,
)
from pardag.store.pool import ConnectionPool
from pardag.store.sql import SQLStore

__all__ = ["CONNECT_TIMEOUT", "PostgresStore"]

CONNECT_TIMEOUT = 5
"""Seconds to wait for the server before the store is reported unreachable (unless the URL
sets ``connect_timeout``)."""
MIGRATION_LOCK = 0x7061726461670001
"""The advisory lock key serialising migrations ("pardag" and 1)."""

Connection = psycopg.Connection[tuple[Any, ...]]
_PLACEHOLDERS: dict[str, str] = {}
T = TypeVar("T")


class PostgresStore(SQLStore):
    """A run store in the PostgreSQL database ``url`` names; tables created if ``create``."""

    _lock = leases.LOCK

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = mask_url(url)
        self._params = self._conninfo(url)
        self._password = str(self._params.get("password") or "")
        self._pool = ConnectionPool(self.url, self._connect, _reusable)
        try:
            self._open(create)
        except BaseException:
            self.close()  # refused: let go of the connection it looked with
            raise

    def _conninfo(self, url: str) -> dict[str, Any]:
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(
                f"store URL {self.url!r} is not a valid PostgreSQL URL: {self._scrub(exc)}; "
                "write postgresql://user:password@host:5432/database"
            ) from exc
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "pardag")
        return params

    # -- opening --------------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        """Check the database holds our tables or none of them, then bring them up to date."""
        with self._connection("opening it") as conn:
            version, writer, tables = self._inspect(conn)
            if schema.plan(version, writer, tables, self.url, create=create):
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    version, writer, tables = self._inspect(conn)
                    pending = schema.plan(version, writer, tables, self.url, create=create)
                    schema.apply(pending, lambda sql, p: conn.execute(_pg(sql), p), time.time())

    def _inspect(self, conn: Connection) -> tuple[int, str, list[str]]:
        """(schema version, the pardag that wrote it, our tables already in the schema)."""
        found = conn.execute("SELECT current_schema()").fetchone()
        if found is None or found[0] is None:
            raise StoreError(
                f"run store {self.url}: no schema to create tables in (the search_path names "
                "none that exists); create it (CREATE SCHEMA name) or fix the URL's options"
            )
        self._channel = notify.channel_of(str(found[0]))
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = ANY(%s)",
            (found[0], list(schema.TABLES)),
        ).fetchall()
        return schema.recorded_version([str(r[0]) for r in rows], conn.execute)

    # -- writing --------------------------------------------------------------------------

    def _row(self, row: Sequence[Any]) -> Sequence[Any]:
        return _clean(row)

    def _execute(self, conn: Connection, sql: str, params: Sequence[Any], refused: str) -> None:
        _execute(conn, sql, params, refused)

    def _apply(
        self,
        conn: Connection,
        batches: list[schema.Batch],
        updates: list[tuple[str, tuple[str, list[Any]]]],
    ) -> None:
        with conn.cursor() as cursor:
            for batch in batches:
                try:
                    cursor.executemany(_pg(batch.sql), [_clean(r) for r in batch.rows])
                except psycopg.IntegrityError as exc:
                    foreign = isinstance(exc, pg_errors.ForeignKeyViolation)
                    message = schema.conflict_message(self.url, batch.what, batch.runs, foreign)
                    raise StoreError(message) from exc
            for run_id, (sql, params) in updates:
                cursor.execute(_pg(sql), _clean(params))
                if cursor.rowcount == 0:
                    raise StoreError(
                        f"run store {self.url}: cannot update run {run_id!r}: no such run"
                    )

    def _announce(self, conn: Connection, runs: tuple[str, ...]) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (self._channel, notify.payload(runs)))

    def listen(self) -> EventListener:
        return notify.Listener(self._connect, self._channel, self.url)

    def put_cache(self, entry: CacheEntry) -> None:
        row = _clean(schema.row(entry, schema.CACHE_COLUMNS))
        self._write("storing a cached output", lambda c: c.execute(_pg(schema.UPSERT_CACHE), row))

    # -- reading --------------------------------------------------------------------------

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    # -- transactions, connections, errors ------------------------------------------------

    def _write(self, doing: str, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, committed before returning."""
        with self._connection(doing) as conn, conn.transaction():
            return work(conn)

    def _fetch(self, conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
        return conn.execute(_pg(sql), _clean(params)).fetchall()

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of a query; once more on a new connection if the one it had was broken (a
        server restart breaks every idle connection; reading twice is harmless, writing not).
        A NUL in a parameter is read as written (U+FFFD), not refused by the server."""
        params = _clean(params)
        try:
            with self._connection("reading it") as conn:
                return conn.execute(_pg(sql), params).fetchall()
        except StoreError as exc:
            if not isinstance(exc.__cause__, psycopg.OperationalError):
                raise
        with self._connection("reading it") as conn:
            return conn.execute(_pg(sql), params).fetchall()

    @contextlib.contextmanager
    def _connection(self, doing: str) -> Iterator[Connection]:
        """A connection for one operation; psycopg errors become StoreErrors saying ``doing``."""
        conn = self._pool.take()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            self._pool.drop_idle()  # the server may have gone away under all of them
            raise StoreError(
                f"run store {self.url}: {doing} failed, the connection to the server broke: "
                f"{self._scrub(exc)}"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"run store {self.url}: {doing} failed: {self._scrub(exc)}") from exc
        finally:
            self._pool.give_back(conn)

    def _connect(self) -> Connection:
        try:
            return psycopg.connect(autocommit=True, **self._params)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot reach the run store {self.url}: {self._scrub(exc)}; check that "
                "PostgreSQL runs there and that the URL's user, password and database are right"
            ) from exc

    def _scrub(self, exc: BaseException) -> str:
        """The error's text, one line, never showing the password."""
        text = "; ".join(" ".join(line.split()) for line in str(exc).splitlines() if line.strip())
        password = getattr(self, "_password", "")
        return text.replace(password, "***") if password else text


def _pg(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` placeholders for the ``?`` the shared statements use."""
    converted = _PLACEHOLDERS.get(sql)
    if converted is None:
        converted = _PLACEHOLDERS[sql] = sql.replace("?", "%s")
    return converted


def _clean(row: Sequence[Any]) -> tuple[Any, ...]:
    """PostgreSQL text cannot hold NUL: it becomes U+FFFD rather than failing the whole write."""
    return tuple(v.replace("\0", "\ufffd") if type(v) is str and "\0" in v else v for v in row)


def _execute(conn: Connection, sql: str, params: Sequence[Any], refused: str) -> None:
    """Execute one statement; a broken constraint is a StoreError saying ``refused``."""
    try:
        conn.execute(_pg(sql), params)
    except psycopg.IntegrityError as exc:
        raise StoreError(f"{refused} ({exc.diag.message_primary or exc})") from exc


def _reusable(conn: Connection) -> bool:
    """A connection can serve again when it is open and outside any transaction."""
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
