"""The event streams: ``GET /api/runs/{id}/events`` (one run) and ``GET /api/events`` (all).

Both answer Server-Sent Events, or, with ``?wait=`` or without ``Accept: text/event-stream``,
a long poll: the events after ``?after=N`` as JSON, waiting up to ``wait`` seconds for one.
A run's stream numbers its frames with the event's ``seq`` in the run and ends with an ``end``
frame once the run is final and every event was sent. The stream of all runs numbers them
with ``gseq``, the store's number across runs in commit order (``store.feed``), holds only
the caller's organisation's runs, and never ends. Either way a client reconnecting with
``Last-Event-ID: N`` (browsers' ``EventSource`` does it by itself) gets every event after N,
then the live ones: no gap, no duplicate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from pardag.server import streams
from pardag.server.auth import Viewer, store_of
from pardag.server.feeds import Hub
from pardag.server.routes_runs import run_of
from pardag.server.shapes import event_json
from pardag.states import RunStatus
from pardag.store.base import EventRecord, Store

__all__ = ["RECHECK", "router"]

router = APIRouter(prefix="/api", tags=["events"])

RECHECK = 5.0
"""Seconds between checks that a stream's token is still valid (revoked: the stream ends)."""

After = Annotated[
    int | None,
    Query(ge=0, le=streams.MAX_ID, description="Send the events numbered above this"),
]
Wait = Annotated[float | None, Query(ge=0, le=60, description="Long poll: seconds to wait")]
LastEventId = Annotated[str | None, Header(description="The id of the last frame received")]


def _run_follower(request: Request, store: Store, run_id: str) -> streams.Direct:
    def read(after: int) -> tuple[bool, list[EventRecord]]:
        # the status first, so that every event written before the run became final is read
        record = store.get_run(run_id)
        final = record is None or RunStatus(record.status).is_final()
        return final, store.get_events(run_id, after=after)

    def make(event: EventRecord) -> streams.Item:
        return streams.item(event.seq, event.kind, event_json(event))

    wakeups = streams.wakeups_of(request)
    return streams.Direct(wakeups, run_id, read, make, lambda last: {"run": run_id, "last": last})


def _wants_poll(request: Request, wait: float | None) -> bool:
    return wait is not None or "text/event-stream" not in request.headers.get("accept", "")


@router.get("/runs/{run_id}/events", summary="The run's events: SSE, or a long poll with ?wait=")
async def run_events(
    request: Request,
    run_id: str,
    who: Viewer,
    after: After = None,
    wait: Wait = None,
    last_event_id: LastEventId = None,
) -> Any:
    store = store_of(request)
    await run_in_threadpool(run_of, store, who, run_id)
    start = streams.start(after, last_event_id)
    follower = _run_follower(request, store, run_id)
    if _wants_poll(request, wait):
        return await streams.long_poll(follower, start, wait or 0.0)
    return streams.respond(streams.stream(request, follower, start))


@router.get("/events", summary="Every event of the organisation's runs: SSE, or a long poll")
async def all_events(
    request: Request,
    who: Viewer,
    after: After = None,
    wait: Wait = None,
    last_event_id: LastEventId = None,
) -> Any:
    start = streams.start(after, last_event_id)
    hub: Hub = request.app.state.feeds
    if _wants_poll(request, wait):
        with hub.subscribe(who.org, start) as subscription:
            return await streams.long_poll(subscription, start, wait or 0.0)
    return streams.respond(_all(request, hub, who.org, start))


async def _all(request: Request, hub: Hub, org: str, start: int) -> AsyncIterator[str]:
    with hub.subscribe(org, start) as subscription:
        async for piece in streams.stream(request, subscription, start):
            yield piece
