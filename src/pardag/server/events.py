"""``GET /api/runs/{id}/events``: a run's events, live, as Server-Sent Events or long polls.

Each SSE frame's ``id`` is the event's ``seq`` in the store, so a client that reconnects with
``Last-Event-ID: N`` (browsers' ``EventSource`` does it by itself) gets every event after N,
then the live ones: no gap, no duplicate. The stream reads the store every ``poll`` seconds
while nothing is new (SQLite and PostgreSQL alike, for now), ends with an ``end`` frame once
the run is final and every event was sent, and ends too when the caller's token is revoked or
expires (checked every ``RECHECK`` seconds by default). A client that cannot read a stream asks
``?after=N&wait=30``: the events after N as JSON, waiting up to ``wait`` seconds for one.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from pardag.server.auth import Viewer, authenticate, store_of
from pardag.server.errors import ApiError
from pardag.server.routes_runs import run_of
from pardag.server.shapes import event_json
from pardag.states import RunStatus
from pardag.store.base import EventRecord, Store

__all__ = ["RECHECK", "router"]

router = APIRouter(prefix="/api/runs", tags=["events"])


RECHECK = 5.0
"""Seconds between checks that a stream's token is still valid (revoked: the stream ends)."""
KEEPALIVE = 15.0
"""Seconds of silence after which a stream sends a comment, so that proxies keep it open."""


def _start(after: int | None, last_event_id: str | None) -> int:
    if last_event_id is None:
        return after or 0
    try:
        return max(int(last_event_id), 0)
    except ValueError:
        raise ApiError(
            400,
            "bad_last_event_id",
            f"Last-Event-ID {last_event_id[:40]!r} is not an event number; send the id of the "
            "last event received",
        ) from None


def _final(store: Store, run_id: str) -> bool:
    record = store.get_run(run_id)
    return record is None or RunStatus(record.status).is_final()


def _read(store: Store, run_id: str, after: int) -> tuple[bool, list[EventRecord]]:
    """(was the run final, the events after ``after``): the status is read first, so that
    every event written before the run became final is in the list."""
    final = _final(store, run_id)
    return final, store.get_events(run_id, after=after)


@router.get("/{run_id}/events", summary="The run's events: SSE, or a long poll with ?wait=")
async def run_events(
    request: Request,
    run_id: str,
    who: Viewer,
    after: Annotated[int | None, Query(ge=0)] = None,
    wait: Annotated[float | None, Query(ge=0, le=60)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    store = store_of(request)
    await run_in_threadpool(run_of, store, who, run_id)
    start = _start(after, last_event_id)
    poll: float = request.app.state.poll
    if wait is not None or "text/event-stream" not in request.headers.get("accept", ""):
        return await _long_poll(store, run_id, start, wait or 0.0, poll)
    frames = _stream(request, store, run_id, start, poll)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


async def _long_poll(
    store: Store, run_id: str, after: int, wait: float, poll: float
) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:
        final, events = await run_in_threadpool(_read, store, run_id, after)
        if events or final or time.monotonic() >= deadline:
            last = events[-1].seq if events else after
            return {"events": [event_json(e) for e in events], "last": last, "final": final}
        await anyio.sleep(min(poll, max(deadline - time.monotonic(), 0)))


def _frame(event: EventRecord) -> str:
    data = json.dumps(event_json(event), separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


async def _stream(
    request: Request, store: Store, run_id: str, after: int, poll: float
) -> AsyncIterator[str]:
    header = request.headers.get("authorization")
    checked = quiet = time.monotonic()
    while True:
        final, events = await run_in_threadpool(_read, store, run_id, after)
        for event in events:
            yield _frame(event)
            after = event.seq
        if final:
            yield f"event: end\ndata: {json.dumps({'run': run_id, 'last': after})}\n\n"
            return
        now = time.monotonic()
        if events:
            quiet = now
        elif now - quiet >= KEEPALIVE:
            yield ": keepalive\n\n"
            quiet = now
        if now - checked >= request.app.state.recheck:
            checked = now
            try:
                await run_in_threadpool(authenticate, store, header)
            except ApiError as exc:
                yield f"event: error\ndata: {json.dumps({'message': exc.message})}\n\n"
                return
        if await request.is_disconnected():
            return
        await anyio.sleep(poll)
