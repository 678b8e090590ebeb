"""The web page ``pardag serve`` serves beside the API (docs/server.md, "The web page").

Server-rendered HTML (Jinja2, ``server/templates``) that reads without JavaScript, with htmx
and three small ES modules (``server/static/js``: the live parts, the DAG, the timeline) on
top; no build step, nothing fetched from elsewhere. It reads and acts through the API's own
code, as the signed-in user's token (``session``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from pardag.server.ui import actions, runs_page, session, workflows_page
from pardag.server.ui.render import page

__all__ = ["PAGE_ROUTERS", "STATIC", "error_page", "install"]

STATIC = Path(__file__).resolve().parent.parent / "static"
"""The page's scripts, styles and vendored libraries (``static/VENDORED.md``)."""
PAGE_ROUTERS = (session.router, runs_page.router, actions.router, workflows_page.router)


def install(app: FastAPI) -> None:
    """Serve the page from ``app``: its routes, its static files, its error pages."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(session.LoginNeeded, session.to_login)
    app.state.error_page = error_page


def error_page(request: Request, status: int, message: str) -> Response | None:
    """The HTML answer to an error of a page (None for the API's paths: JSON there)."""
    path = request.url.path
    if path.startswith(("/api/", "/hooks/", "/static/")) or path in ("/healthz", "/metrics"):
        return None
    answer = page(request, "error.html", None, status=status, message=message)
    answer.status_code = status
    return answer
