"""The stream of all runs, shared: one reader per organisation for all of its streams.

A hundred clients following ``GET /api/events`` of one organisation would each read the
store at every commit and encode every event again. Instead one ``Feed`` per organisation
reads (``Store.org_events``) when woken (``server.wakeups``) and keeps the latest items, each
encoded once; every stream of that organisation sends from there. A stream whose cursor is
older than what the feed holds (a client resuming from long ago, or one that came first)
reads the store itself until it reaches the feed. A feed reads while it has streams and is
dropped with its last one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
from collections.abc import Iterator
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from pardag.server.shapes import event_json
from pardag.server.streams import Item, item
from pardag.server.wakeups import ALL, Wakeups
from pardag.store.base import EventRecord, Store

__all__ = ["PAGE", "TAIL", "Feed", "Hub", "Subscription"]

PAGE = 500
"""Events per read of the store (more are read at once, without waiting)."""
log = logging.getLogger("pardag.server")

TAIL = 5000
"""Items a feed keeps at least (twice as many at most) for streams a little behind."""


def all_runs_item(event: EventRecord) -> Item:
    """An event of the stream of all runs: numbered by ``gseq``, naming its run."""
    number = event.gseq or 0
    return item(number, event.kind, {"id": number, "run": event.run_id, **event_json(event)})


class Feed:
    """The events of ``org``'s runs, read once for all of its streams."""

    def __init__(self, store: Store, org: str, wakeups: Wakeups, start: int) -> None:
        self.store, self.org, self.wakeups = store, org, wakeups
        self.items: list[Item] = []
        self.base: int | None = None
        """The feed holds every item numbered above ``base`` up to ``last`` (None: not read
        yet)."""
        self.last = start
        self.users = 0
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def after(self, cursor: int) -> list[Item] | None:
        """The items numbered above ``cursor``; None when the feed does not reach back so far."""
        if self.base is None or cursor < self.base:
            return None
        return self.items[bisect.bisect_right(self.items, cursor, key=lambda i: i.cursor) :]

    def read(self, after: int) -> list[Item]:
        """Up to ``PAGE`` items above ``after``, from the store (in a worker thread)."""
        return [all_runs_item(e) for e in self.store.org_events(self.org, after, PAGE)]

    async def run(self) -> None:
        """Read whenever woken, while someone follows; a store that fails is read again
        after ``poll`` (the streams wait meanwhile, and their clients get every event once
        it answers)."""
        while self.users:
            ticket = self.wakeups.ticket(ALL)
            try:
                fresh = await run_in_threadpool(self.read, self.last)
            except Exception as exc:  # the feed outlives a failing store: its streams wait
                log.warning("reading the events of organisation %s failed: %s", self.org, exc)
                await anyio.sleep(self.wakeups.poll)
                continue
            if self.base is None:
                self.base = self.last
            if fresh:
                self._add(fresh)
            if len(fresh) < PAGE:
                await self.wakeups.wait(ticket, math.inf)

    def _add(self, fresh: list[Item]) -> None:
        self.items.extend(fresh)
        self.last = fresh[-1].cursor
        if len(self.items) > 2 * TAIL:
            dropped, self.items = self.items[:-TAIL], self.items[-TAIL:]
            self.base = dropped[-1].cursor
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class Subscription:
    """One stream's view of a feed (a ``streams.Follower``)."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.version = feed.changed

    async def pull(self, after: int) -> tuple[bool, list[Item]]:
        self.version = self.feed.changed  # before looking: no new item is missed
        items = self.feed.after(after)
        if items is None:
            items = await run_in_threadpool(self.feed.read, after)
        return False, items

    async def idle(self, most: float) -> None:
        with anyio.move_on_after(max(most, 0.0)):
            await self.version.wait()

    def end(self, last: int) -> dict[str, Any]:
        return {"last": last}


class Hub:
    """The feeds of one app, by organisation."""

    def __init__(self, store: Store, wakeups: Wakeups) -> None:
        self.store, self.wakeups = store, wakeups
        self.feeds: dict[str, Feed] = {}

    @contextlib.contextmanager
    def subscribe(self, org: str, start: int) -> Iterator[Subscription]:
        """A subscription to ``org``'s feed (made, reading from ``start``, if it has none)."""
        feed = self.feeds.get(org)
        if feed is None:
            feed = self.feeds[org] = Feed(self.store, org, self.wakeups, start)
        feed.users += 1
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(feed.run())
        try:
            yield Subscription(feed)
        finally:
            feed.users -= 1
            if not feed.users:
                del self.feeds[org]
                if feed.task is not None:
                    feed.task.cancel()
