"""Rendering the page's HTML: one Jinja2 environment over ``server/templates``.

Autoescaping is on for every template, so a step's output, a reason or a workflow's name is
text on the page, never markup. The filters here turn the store's numbers into what a person
reads (times, durations, sizes); the same wording the command line uses where it has one.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

import pardag

if TYPE_CHECKING:
    from pardag.server.ui.session import User

__all__ = ["STATE_LABELS", "duration", "environment", "page", "stamp"]

STATE_LABELS = {
    "pending": "… pending",
    "ready": "• ready",
    "waiting": "◔ waiting",
    "running": "▶ running",
    "retrying": "↻ retrying",
    "paused": "❚❚ paused",
    "succeeded": "✓ succeeded",
    "failed": "✗ failed",
    "skipped": "↷ skipped",
    "cancelled": "⊘ cancelled",
    "queued": "… queued",
    "timed_out": "◷ timed out",
}
"""Each state as the page shows it: an icon and a word, never colour alone (dag.js agrees)."""


def stamp(at: float | None) -> str:
    """A time as UTC, to the second."""
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: float | None, end: float | None = None) -> str:
    """How long from ``start`` to ``end`` (now, when not ended), as ``1.2 s``, ``3m 04s``."""
    if start is None:
        return "—"
    seconds = max(0.0, (end if end is not None else time.time()) - start)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _json_script(value: Any) -> Markup:
    """``value`` as JSON safe inside ``<script type="application/json">``."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@cache
def environment() -> Environment:
    """The templates, with the page's filters."""
    env = Environment(
        loader=PackageLoader("pardag.server", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(stamp=stamp, json_script=_json_script, pretty=_pretty)
    env.globals.update(
        duration=duration, labels=STATE_LABELS, version=pardag.__version__, asset=_asset
    )
    return env


def _asset(path: str) -> str:
    """A static file's URL, its version in the query so a new release is fetched anew."""
    return f"/static/{path}?v={pardag.__version__}"


HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Every page's headers: scripts from this site only (no inline script runs), never inside
another site's frame (a hidden Approve button under a decoy), no referrer to other sites."""


def page(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
    """Template ``name`` rendered for ``user`` (None: signed out)."""
    html = environment().get_template(name).render(request=request, user=user, **context)
    return HTMLResponse(html, headers=HEADERS)
