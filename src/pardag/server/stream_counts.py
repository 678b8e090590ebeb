"""How many event streams are open, per organisation, for ``GET /metrics``.

A pure ASGI middleware counts every response sent as ``text/event-stream`` (a run's events,
or every run's) from its first byte to its end, under the organisation of the token that
opened it (``auth.need`` leaves the caller in the request's state). It counts streams of any
route, so a new streaming route is counted without saying so.
"""

from __future__ import annotations

import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CountStreams", "StreamCounter"]


class StreamCounter:
    """The open streams of each organisation (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def add(self, org: str, change: int) -> None:
        with self._lock:
            self._open[org] = self._open.get(org, 0) + change

    def count(self, org: str) -> int:
        with self._lock:
            return self._open.get(org, 0)


def _is_stream(message: Message) -> bool:
    headers: dict[bytes, bytes] = dict(message.get("headers") or [])
    return headers.get(b"content-type", b"").startswith(b"text/event-stream")


class CountStreams:
    """``app``, its event streams counted in ``counter`` while they are open."""

    def __init__(self, app: ASGIApp, counter: StreamCounter) -> None:
        self.app, self.counter = app, counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted: list[str] = []

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_stream(message):
                who = (scope.get("state") or {}).get("principal")
                if who is not None:
                    self.counter.add(who.org, 1)
                    counted.append(who.org)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            for org in counted:
                self.counter.add(org, -1)
