"""The request body limit: a body over ``max_bytes`` is refused with a 413, unread.

A pure ASGI middleware, so that the limit holds before anything parses the body: a declared
``Content-Length`` over the limit is refused at once, and a body sent in chunks (no length
declared) is counted as it arrives and refused once it passes the limit (the app then reads
a disconnect).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY", "BodyLimit"]

DEFAULT_MAX_BODY = 1024 * 1024
"""1 MiB: a workflow definition the file readers accept fits with room to spare."""


class BodyLimit:
    """``app`` behind a limit of ``max_bytes`` per request body."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen, started, refused = 0, False, False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                if not started:
                    await self._refuse(send)
                return {"type": "http.disconnect"}  # the app stops reading: the client left
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if refused:
                return  # answered already: the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        limit = f"{self.max_bytes // 1024} KiB" if self.max_bytes >= 1024 else f"{self.max_bytes} B"
        body: dict[str, Any] = {
            "error": {
                "code": "too_large",
                "message": f"the request body is over the server's limit of {limit}; send "
                "less (a workflow definition this large would not be read either)",
            }
        }
        raw = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": raw})
