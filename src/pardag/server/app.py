"""The HTTP API as one ASGI app: ``create_app(store)``.

Routes live in ``routes_workflows``, ``routes_runs`` and ``events``; who may call them in
``auth``; how errors look in ``errors``; the body limit in ``limits``. The app only reads and
writes the run store: runs are executed by workers (``pardag.worker``), in the same process
under ``pardag serve`` or anywhere else.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

import pardag
from pardag.server import (
    errors,
    events,
    metrics,
    routes_hooks,
    routes_runs,
    routes_secrets,
    routes_tokens,
    routes_workflows,
    ui,
)
from pardag.server.feeds import Hub
from pardag.server.limits import DEFAULT_MAX_BODY, BodyLimit
from pardag.server.stream_counts import CountStreams, StreamCounter
from pardag.server.wakeups import FALLBACK, Wakeups
from pardag.store.base import Store

__all__ = ["POLL", "PUBLIC", "ROUTERS", "api_routes", "create_app"]

POLL = 0.2
"""Seconds an event stream waits before it reads the store again when nothing was new."""
PUBLIC = frozenset({"/healthz", "/api/openapi.json", "/api/docs", "/hooks/{org}/{name}"})
"""The only paths served without a token (a webhook is signed instead: ``routes_hooks``)."""


ROUTERS = (
    routes_workflows.router,
    routes_runs.router,
    events.router,
    routes_hooks.router,
    routes_secrets.router,
    routes_tokens.router,
    metrics.router,
)
"""The API's routes, a router per concept."""


def create_app(
    store: Store,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    poll: float = POLL,
    recheck: float = events.RECHECK,
    fallback: float = FALLBACK,
) -> FastAPI:
    """The API over ``store`` (which the caller opens and closes). ``poll`` and ``recheck``:
    how often an event stream reads the store, and checks its token again; ``fallback``: how
    long it waits for a notice when the store sends them (``server.wakeups``). The web page
    (``server.ui``) is served beside the API."""
    app = FastAPI(
        title="pardag",
        version=pardag.__version__,
        summary="Workflows, runs, approvals and live events of a pardag run store.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.poll, app.state.recheck = poll, recheck
    app.state.wakeups = Wakeups(store, poll, fallback)
    app.state.feeds = Hub(store, app.state.wakeups)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router, responses=errors.RESPONSES)
    app.add_api_route("/healthz", _healthz, methods=["GET"], summary="Alive (no token needed)")
    ui.install(app)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.state.streams = StreamCounter()
    app.add_middleware(CountStreams, counter=app.state.streams)
    return app


def _healthz() -> dict[str, str]:
    return {"status": "ok"}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of ``app``'s API: those of ``ROUTERS``, then the app's own (``/healthz``);
    not the web page's (``pardag.server.ui``, which signs in with a cookie instead)."""
    own = [r for r in app.routes if isinstance(r, APIRoute)]
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)] + own
