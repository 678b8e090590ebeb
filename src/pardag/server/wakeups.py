"""When an event stream reads the store again: at once when told, else every ``poll`` seconds.

On PostgreSQL one thread per app listens (``Store.listen``: ``LISTEN/NOTIFY``) and wakes the
streams of the runs a commit names, and every stream of all runs; a stream then waits up to
``fallback`` seconds without a notice (a lost one costs that much, no more). A store that
cannot notify (SQLite), or a listener whose connection broke, leaves the streams reading
every ``poll`` seconds until it listens again. A stream takes its ticket before it reads, so
a commit between the read and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import anyio

from pardag.store.base import EventListener, Store, StoreError

__all__ = ["ALL", "FALLBACK", "Wakeups"]

FALLBACK = 5.0
"""Seconds a stream waits for a notice before it reads anyway, while the listener listens."""
ALL = "*"
"""The ticket key of the streams of all runs (woken by any commit)."""

log = logging.getLogger("pardag.server")


class Wakeups:
    """The wake-ups of one app's streams over ``store``."""

    def __init__(self, store: Store, poll: float, fallback: float = FALLBACK) -> None:
        self.store, self.poll, self.fallback = store, poll, fallback
        self.listening = False
        """True while the listener holds its connection: streams wait for notices."""
        self._waiting: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: EventListener | None = None
        self._closed = threading.Event()

    def ticket(self, key: str) -> asyncio.Event:
        """What wakes the streams of run ``key`` (``ALL``: of all runs); take it before
        reading the store."""
        if self._loop is None:
            self._start()
        return self._waiting.setdefault(key, asyncio.Event())

    async def wait(self, ticket: asyncio.Event, most: float) -> None:
        """Until ``ticket`` is woken, ``most`` seconds pass, or it is time to poll."""
        limit = min(most, self.fallback if self.listening else self.poll)
        with anyio.move_on_after(max(limit, 0.0)):
            await ticket.wait()

    def close(self) -> None:
        """Stop listening (the thread ends within a second)."""
        self._closed.set()
        if self._listener is not None:
            self._listener.close()

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = self.store.listen()
        if self._listener is not None:
            thread = threading.Thread(target=self._listen, name="pardag-listen", daemon=True)
            thread.start()

    def _listen(self) -> None:
        assert self._listener is not None and self._loop is not None
        while not self._closed.is_set():
            try:
                runs = self._listener.wait(1.0)
            except StoreError as exc:
                if not self._closed.is_set():
                    log.warning("%s", exc)
                self.listening = False
                self._closed.wait(self.poll)
                continue
            self.listening = True
            if runs and not self._closed.is_set():
                self._loop.call_soon_threadsafe(self._wake, runs)

    def _wake(self, runs: set[str]) -> None:
        keys = list(self._waiting) if ALL in runs else [*runs, ALL]
        for key in keys:
            event = self._waiting.pop(key, None)
            if event is not None:
                event.set()
