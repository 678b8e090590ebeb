"""The SQLite run store: one file, shared by the threads of a process and by processes.

Durability first: WAL journal and ``synchronous=FULL``, so a commit is on disk when ``write``
returns; foreign keys on. Writers take the write lock up front (``BEGIN IMMEDIATE``): a
transaction that starts reading and later writes must upgrade its lock, which is where SQLite
gives up with "database is locked" without waiting. A file another process holds is waited
for by SQLite's busy timeout, then retried with backoff for up to ``lock_timeout`` seconds in
all; only then is it an error, and a StoreError that says so.

sqlite3 connections are lent out one operation at a time from a small pool: any thread may
read while the runner's writer thread commits, and idle connections hold no lock.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pardag.store import schema
from pardag.store.base import (
    CacheEntry,
    StoreError,
)
from pardag.store.pool import ConnectionPool
from pardag.store.sql import SQLStore

__all__ = ["BUSY_TIMEOUT", "LOCK_TIMEOUT", "SQLiteStore"]

BUSY_TIMEOUT = 5.0
"""Seconds SQLite itself waits for a lock another connection holds (``busy_timeout``)."""
LOCK_TIMEOUT = 30.0
"""Seconds in all an operation keeps retrying a busy file before it is a StoreError."""
QUICK_CHECK_LIMIT = 256 * 1024 * 1024
"""Files up to this size are checked whole (``PRAGMA quick_check``) when opened; it reads every
page (about 0.15 s for 90 MB here), so bigger ones are not. Damage found later is reported
the same way."""

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
T = TypeVar("T")


class SQLiteStore(SQLStore):
    """A run store in the SQLite file ``path``, created (with its directory) if ``create``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.url = str(self.path)
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        self._pool = ConnectionPool(self.url, self._connect, lambda c: not c.in_transaction)
        try:
            self._open(create)
        except BaseException:
            self.close()  # refused: let go of the connection it looked with
            raise

    # -- opening --------------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        """Check the file is ours and intact, then bring its schema up to date."""
        self._check_path(create)
        with self._connection("opening it") as conn:
            if self.path.stat().st_size <= QUICK_CHECK_LIMIT:
                problems = self._retrying(lambda: conn.execute("PRAGMA quick_check").fetchall())
                if problems != [("ok",)]:
                    raise StoreError(self._damaged(_first_lines(problems)))
            version, writer, tables = self._retrying(lambda: self._inspect(conn))
            if schema.plan(version, writer, tables, self.url, create=create):
                self._retrying(lambda: self._transaction(conn, lambda: self._migrate(conn, create)))

    def _check_path(self, create: bool) -> None:
        if self.path.is_dir():
            raise StoreError(
                f"the run store {self.path} is a directory; give a file path such as "
                f"{self.path / 'runs.db'}"
            )
        if self.path.exists():
            return
        if not create:
            raise StoreError(
                f"there is no pardag run store at {self.path} (no such file); check --store "
                "(or PARDAG_STORE), or run a workflow to create it"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the run store's directory: {exc}") from exc
        _create_private(self.path)

    def _inspect(self, conn: sqlite3.Connection) -> tuple[int, str, list[str]]:
        """(schema version, the pardag that wrote it, the file's tables) of the open file."""
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' "
            "ESCAPE '!'"
        ).fetchall()
        return schema.recorded_version([str(n[0]) for n in names], conn.execute)

    def _migrate(self, conn: sqlite3.Connection, create: bool) -> None:
        """Inside the write transaction: look again (another process may have migrated)."""
        version, writer, tables = self._inspect(conn)
        pending = schema.plan(version, writer, tables, self.url, create=create)
        schema.apply(pending, conn.execute, time.time())

    # -- writing --------------------------------------------------------------------------

    def _execute(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[Any], refused: str
    ) -> None:
        _execute(conn, sql, params, refused)

    def _apply(
        self,
        conn: sqlite3.Connection,
        batches: list[schema.Batch],
        updates: list[tuple[str, tuple[str, list[Any]]]],
    ) -> None:
        for batch in batches:
            try:
                conn.executemany(batch.sql, batch.rows)
            except sqlite3.IntegrityError as exc:
                foreign = "FOREIGN KEY" in str(exc)
                message = schema.conflict_message(self.url, batch.what, batch.runs, foreign)
                raise StoreError(message) from exc
        for run_id, (sql, params) in updates:
            if conn.execute(sql, params).rowcount == 0:
                raise StoreError(f"run store {self.url}: cannot update run {run_id!r}: no such run")

    def put_cache(self, entry: CacheEntry) -> None:
        row = schema.row(entry, schema.CACHE_COLUMNS)
        self._write("storing a cached output", lambda c: c.execute(schema.UPSERT_CACHE, row))

    # -- reading --------------------------------------------------------------------------

    def pragmas(self) -> dict[str, Any]:
        """The settings in force on this store's connections (for diagnostics and the docs)."""
        names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        return {name: self._read(f"PRAGMA {name}", ())[0][0] for name in names}

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        self._pool.close()

    # -- transactions, retries, errors ----------------------------------------------------

    def _write(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, committed before returning."""
        with self._connection(doing) as conn:
            return self._retrying(lambda: self._transaction(conn, lambda: work(conn)))

    def _fetch(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
        return conn.execute(sql, params).fetchall()

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._connection("reading it") as conn:
            return self._retrying(lambda: conn.execute(sql, params).fetchall())

    @staticmethod
    def _transaction(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again after a pause while the file is busy, up to ``lock_timeout``."""
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.005
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause * random.uniform(0.5, 1.5))  # apart, so waiters do not collide
            pause = min(pause * 2, 0.25)

    @contextlib.contextmanager
    def _connection(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A connection for one operation; sqlite3 errors become StoreErrors saying ``doing``."""
        conn = self._pool.take()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._error(exc, doing) from exc
        finally:
            self._pool.give_back(conn)

    def _connect(self) -> sqlite3.Connection:
        """A new connection with pardag's settings; the journal mode is the file's own."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "opening it") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            mode = self._retrying(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc, "opening it") from exc
        if mode is None or str(mode[0]).lower() != "wal":
            conn.close()
            raise StoreError(
                f"the run store {self.path} cannot use SQLite's WAL journal (it stays in "
                f"{mode[0] if mode else 'an unknown'} mode): keep it on a local file system"
            )
        return conn

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        if _code(exc) in _DAMAGED:
            return StoreError(self._damaged(str(exc)))
        if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
            return StoreError(
                f"the run store {self.path} stayed locked by another process for over "
                f"{self.lock_timeout:g}s while {doing}; is a process stuck holding it?"
            )
        return StoreError(f"run store {self.path}: {doing} failed: {exc}")

    def _damaged(self, found: str) -> str:
        return (
            f"{self.path} is not a pardag run store or is damaged: {found}; move it away "
            "to start a new one (pardag creates a new store when the file is missing)"
        )


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any], refused: str) -> None:
    """Execute one statement; a broken constraint is a StoreError saying ``refused``."""
    try:
        conn.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"{refused} ({exc})") from exc


def _first_lines(problems: list[Any], most: int = 3) -> str:
    """The first problems ``PRAGMA quick_check`` found, on one line."""
    lines = [line for p in problems for line in str(p[0]).splitlines() if not line.startswith("*")]
    return "; ".join(lines[:most]) + (" ..." if len(lines) > most else "")


def _code(exc: sqlite3.Error) -> int | None:
    """The primary SQLite result code of ``exc`` (extended codes carry it in the low byte)."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = _code(exc)
    return code in _BUSY if code is not None else "locked" in str(exc)


def _create_private(path: Path) -> None:
    """Create the empty store file readable by its owner alone (0600): it holds params,
    outputs and logs. SQLite gives its -wal and -shm files the database file's mode."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process made it first
    except OSError as exc:
        raise StoreError(f"cannot create the run store {path}: {exc}") from exc
