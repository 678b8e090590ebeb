"""PostgreSQL ``LISTEN``: a reader woken when any process commits events.

Each ``write`` with events runs ``pg_notify`` in its transaction, so the notice goes out at the
commit, never before (``PostgresStore._announce``); its payload names the runs, or ``*`` when
they would not fit. A listener holds a connection of its own, outside the store's pool. A
notice missed while that connection was down cannot be known, so the first ``wait`` after
(re)connecting answers ``*``: read everything once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from pardag.store.base import StoreError

__all__ = ["ANY", "MAX_PAYLOAD", "Listener", "channel_of", "payload"]

ANY = "*"
"""The payload that wakes every reader: some run, unnamed."""
MAX_PAYLOAD = 7000
"""Bytes of run ids a notice carries at most (PostgreSQL's limit is 8000)."""


def channel_of(schema: str) -> str:
    """The channel of the store in ``schema``: stores in other schemas do not wake its readers."""
    return f"pardag_events_{schema}"[:63]


def payload(runs: tuple[str, ...]) -> str:
    """What a notice says: the runs' ids, space-separated, or ``ANY``."""
    text = " ".join(runs)
    return text if len(text.encode()) <= MAX_PAYLOAD else ANY


class Listener:
    """``LISTEN channel`` on a connection of its own (``connect`` makes one)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str, url: str):
        self._connect, self.channel, self.url = connect, channel, url
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def wait(self, timeout: float) -> set[str]:
        if self._closed:
            return set()
        conn = self._conn  # ``close`` on another thread may drop it: keep this one
        try:
            if conn is None:
                self._conn = conn = self._connect()
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                return {ANY}
            runs = {n.payload for n in conn.notifies(timeout=timeout, stop_after=1)}
            runs |= {n.payload for n in conn.notifies(timeout=0)}
        except psycopg.Error as exc:
            self._drop()
            if self._closed:
                return set()
            raise StoreError(
                f"run store {self.url}: listening for new events failed, the connection "
                f"broke ({type(exc).__name__}); it listens again, and streams poll meanwhile"
            ) from exc
        return {run for text in runs for run in text.split()}

    def _drop(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._drop()
