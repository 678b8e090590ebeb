"""The idle connections a SQL store keeps for reuse, safe across threads and ``fork``.

A run's journal writes from its own thread while the runner reads, so each operation takes a
connection of its own; a few are kept for the next one. A process forked from one holding the
store (a worker, a test) must never use nor close its parent's connections: SQLite forbids
carrying one across fork, and closing a PostgreSQL one would end the parent's session. So the
child sets them aside, untouched, and opens its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from pardag.store.base import StoreError

__all__ = ["IDLE_CONNECTIONS", "ConnectionPool"]

IDLE_CONNECTIONS = 4
"""Most idle connections kept; a busier moment opens more and closes them after."""


class _Connection(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Connection)


class ConnectionPool(Generic[C]):
    """Connections from ``connect``; one given back is kept if ``reusable`` says so."""

    def __init__(self, url: str, connect: Callable[[], C], reusable: Callable[[C], bool]) -> None:
        self._url = url
        self._connect = connect
        self._reusable = reusable
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._forked: list[C] = []  # a parent's: see _disown_if_forked
        self._pid = os.getpid()
        self._closed = False

    def take(self) -> C:
        """An idle connection of this process, else a new one."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the run store {self._url} is closed; open it again")
            self._disown_if_forked()
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def give_back(self, conn: C) -> None:
        """Keep ``conn`` for the next operation, or close it (too many, closed, forked)."""
        reusable = self._reusable(conn)
        with self._lock:
            keep = not self._closed and self._pid == os.getpid()
            if keep and reusable and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def drop_idle(self) -> None:
        """Close every idle connection (the server may have gone away under all of them)."""
        with self._lock:
            self._disown_if_forked()
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.drop_idle()

    def _disown_if_forked(self) -> None:
        """In a forked child, set the parent's connections aside. Called with the lock held."""
        if self._pid != os.getpid():
            self._forked += self._idle
            self._idle, self._pid = [], os.getpid()
