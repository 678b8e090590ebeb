"""How an event stream is served, whatever it follows: SSE frames, or a long poll.

A ``Follower`` is what a stream follows: one run read from the store by the stream itself
(``Direct``), or every run of an organisation through a feed shared by all its streams
(``server.feeds``). It gives the events after a cursor, each encoded once (``Item``: its
number, the SSE ``id``, its JSON and its frame), says when nothing more can come, and waits
for a wake-up (``server.wakeups``). A stream sends a keepalive comment after ``KEEPALIVE``
seconds of silence and ends when its token is revoked or expires (checked every ``recheck``
seconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from pardag.server.auth import authenticate, credentials, store_of
from pardag.server.errors import ApiError
from pardag.server.wakeups import Wakeups
from pardag.store.base import EventRecord

__all__ = [
    "KEEPALIVE",
    "MAX_ID",
    "Direct",
    "Follower",
    "Item",
    "item",
    "long_poll",
    "respond",
    "start",
    "stream",
    "wakeups_of",
]

MAX_ID = 2**63 - 1
"""The highest event number a store holds (a signed 64-bit integer)."""
KEEPALIVE = 15.0
"""Seconds of silence after which a stream sends a comment, so that proxies keep it open."""


@dataclass(frozen=True)
class Item:
    """One event as a stream sends it: its number (the SSE ``id``), its JSON, its frame."""

    cursor: int
    data: dict[str, Any]
    frame: str


def item(cursor: int, kind: str, data: dict[str, Any]) -> Item:
    """The ``Item`` of an event numbered ``cursor``, encoded once."""
    text = json.dumps(data, separators=(",", ":"))
    return Item(cursor, data, f"id: {cursor}\nevent: {kind}\ndata: {text}\n\n")


class Follower(Protocol):
    """What a stream follows: ``pull(after)`` gives (nothing more will come, the items after
    the cursor ``after``); ``idle(most)`` waits until more may have come, ``most`` seconds at
    most; ``end(last)`` is the data of the ``end`` frame."""

    async def pull(self, after: int) -> tuple[bool, list[Item]]: ...

    async def idle(self, most: float) -> None: ...

    def end(self, last: int) -> dict[str, Any]: ...


@dataclass
class Direct:
    """A follower reading the store itself each time (``read(after)``: (final, events)), woken
    by ``wakeups`` for run ``key``: a run's stream."""

    wakeups: Wakeups
    key: str
    read: Callable[[int], tuple[bool, list[EventRecord]]]
    make: Callable[[EventRecord], Item]
    end: Callable[[int], dict[str, Any]]
    ticket: asyncio.Event | None = None

    async def pull(self, after: int) -> tuple[bool, list[Item]]:
        self.ticket = self.wakeups.ticket(self.key)  # before reading: no wake-up is missed
        final, events = await run_in_threadpool(self.read, after)
        return final, [self.make(e) for e in events]

    async def idle(self, most: float) -> None:
        assert self.ticket is not None
        await self.wakeups.wait(self.ticket, most)


def start(after: int | None, last_event_id: str | None) -> int:
    """The cursor to start after: ``Last-Event-ID`` (a reconnecting SSE client), else ``after``."""
    if last_event_id is None:
        return after or 0
    try:
        number = int(last_event_id)
        if not 0 <= number <= MAX_ID:
            raise ValueError(number)
        return number
    except ValueError:
        raise ApiError(
            400,
            "bad_last_event_id",
            f"Last-Event-ID {last_event_id[:40]!r} is not an event number; send the id of the "
            "last event received",
        ) from None


def wakeups_of(request: Request) -> Wakeups:
    """The app's wake-ups (``create_app`` makes them)."""
    wakeups: Wakeups = request.app.state.wakeups
    return wakeups


async def long_poll(follower: Follower, after: int, wait: float) -> dict[str, Any]:
    """The events after ``after`` as JSON, waiting up to ``wait`` seconds for one."""
    deadline = time.monotonic() + wait
    while True:
        final, items = await follower.pull(after)
        if items or final or time.monotonic() >= deadline:
            last = items[-1].cursor if items else after
            return {"events": [i.data for i in items], "last": last, "final": final}
        await follower.idle(deadline - time.monotonic())


def respond(frames: AsyncIterator[str]) -> StreamingResponse:
    """``frames`` as a Server-Sent Events response that no proxy buffers."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


async def stream(request: Request, follower: Follower, after: int) -> AsyncIterator[str]:
    """The events after ``after`` as SSE frames, then live ones, until the follower is final
    (each read's frames sent in one piece)."""
    header, store, recheck = (
        credentials(request),  # the header, or the page's session cookie
        store_of(request),
        request.app.state.recheck,
    )
    checked = quiet = time.monotonic()
    while True:
        final, items = await follower.pull(after)
        if items:
            yield "".join(i.frame for i in items)
            after = items[-1].cursor
        if final:
            yield f"event: end\ndata: {json.dumps(follower.end(after))}\n\n"
            return
        now = time.monotonic()
        if items:
            quiet = now
        elif now - quiet >= KEEPALIVE:
            yield ": keepalive\n\n"
            quiet = now
        if now - checked >= recheck:
            checked = now
            try:
                await run_in_threadpool(authenticate, store, header)
            except ApiError as exc:
                yield f"event: error\ndata: {json.dumps({'message': exc.message})}\n\n"
                return
        if await request.is_disconnected():
            return
        if not items:
            await follower.idle(min(checked + recheck, quiet + KEEPALIVE) - time.monotonic())
