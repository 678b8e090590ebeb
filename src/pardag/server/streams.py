"""How an event stream is served, whatever it follows: SSE frames, or a long poll.

A ``Source`` says what a stream follows (one run, or every run of an organisation): how to
read the events after a cursor, which number of an event is the cursor (the SSE ``id``), and
whether nothing more can come. A stream reads, sends, and waits for a wake-up
(``server.wakeups``); it sends a keepalive comment after ``KEEPALIVE`` seconds of silence and
ends when its token is revoked or expires (checked every ``recheck`` seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from pardag.server.auth import authenticate, store_of
from pardag.server.errors import ApiError
from pardag.server.wakeups import Wakeups
from pardag.store.base import EventRecord

__all__ = ["KEEPALIVE", "MAX_ID", "Source", "long_poll", "start", "stream"]

MAX_ID = 2**63 - 1
"""The highest event number a store holds (a signed 64-bit integer)."""
KEEPALIVE = 15.0
"""Seconds of silence after which a stream sends a comment, so that proxies keep it open."""


@dataclass(frozen=True)
class Source:
    """What a stream follows. ``read(after)``: (nothing more will come, the events after the
    cursor ``after``); ``cursor(event)``: the event's number, its SSE id; ``shape(event)``:
    its JSON; ``key``: the run followed, or ``wakeups.ALL``; ``end``: the ``end`` frame's data."""

    key: str
    read: Callable[[int], tuple[bool, list[EventRecord]]]
    cursor: Callable[[EventRecord], int]
    shape: Callable[[EventRecord], dict[str, Any]]
    end: Callable[[int], dict[str, Any]]


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


async def long_poll(request: Request, source: Source, after: int, wait: float) -> dict[str, Any]:
    """The events after ``after`` as JSON, waiting up to ``wait`` seconds for one."""
    wakeups = wakeups_of(request)
    deadline = time.monotonic() + wait
    while True:
        ticket = wakeups.ticket(source.key)
        final, events = await run_in_threadpool(source.read, after)
        if events or final or time.monotonic() >= deadline:
            last = source.cursor(events[-1]) if events else after
            return {"events": [source.shape(e) for e in events], "last": last, "final": final}
        await wakeups.wait(ticket, deadline - time.monotonic())


def respond(frames: AsyncIterator[str]) -> StreamingResponse:
    """``frames`` as a Server-Sent Events response that no proxy buffers."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


def _frame(source: Source, event: EventRecord) -> str:
    data = json.dumps(source.shape(event), separators=(",", ":"))
    return f"id: {source.cursor(event)}\nevent: {event.kind}\ndata: {data}\n\n"


async def stream(request: Request, source: Source, after: int) -> AsyncIterator[str]:
    """The events after ``after`` as SSE frames, then live ones, until the source is final."""
    wakeups, header = wakeups_of(request), request.headers.get("authorization")
    store, recheck = store_of(request), request.app.state.recheck
    checked = quiet = time.monotonic()
    while True:
        ticket = wakeups.ticket(source.key)
        final, events = await run_in_threadpool(source.read, after)
        for event in events:
            yield _frame(source, event)
            after = source.cursor(event)
        if final:
            yield f"event: end\ndata: {json.dumps(source.end(after))}\n\n"
            return
        now = time.monotonic()
        if events:
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
        if not events:
            most = min(checked + recheck, quiet + KEEPALIVE) - time.monotonic()
            await wakeups.wait(ticket, most)
