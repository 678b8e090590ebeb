"""Every page route, for another organisation's run or workflow: a 404, never its content.

The routes come from the page's own routers (``PAGE_ROUTERS``), so a page added later is
covered at once. Signed out, every page but the login form sends the browser to sign in.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from pardag.server.auth import COOKIE
from pardag.server.ui import PAGE_ROUTERS
from pardag.server.ui.session import csrf_of
from tests.server.conftest import FLOW, MARKER, Served

OPEN = {"/login", "/logout", "/", "/runs", "/workflows"}
"""Routes naming no object (checked apart: signed out, and the lists)."""


def page_routes() -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]


@pytest.fixture(scope="module")
def rivals(site: Served) -> dict[str, str]:
    workflow = site.workflow("rival", FLOW.replace("name: chain", f"name: {MARKER}"))
    run_id = site.start("rival", workflow)
    site.wait_for("rival", run_id, lambda r: r["status"] == "succeeded")
    return {"run_id": run_id, "workflow_id": workflow, "step": "a"}


def test_every_page_of_another_organisations_object_is_a_404(
    site: Served, rivals: dict[str, str]
) -> None:
    token = site.tokens["admin"]  # acme's highest role
    named = [(m, p) for m, p in page_routes() if p not in OPEN]
    assert len(named) >= 10  # the run, its row, panel, step, logs, actions, a workflow, its run
    with httpx.Client(base_url=site.url, cookies={COOKIE: token}) as client:
        for method, path in named:
            url = path.format(**rivals)
            answer = client.request(method, url, data={"csrf": csrf_of(token)})
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert MARKER not in answer.text, (method, path)  # (the id asked for is echoed)
        for path in ("/runs", "/workflows", f"/runs?q={rivals['run_id']}"):
            assert MARKER not in client.get(path).text


def test_signed_out_every_page_sends_the_browser_to_sign_in(
    site: Served, rivals: dict[str, str]
) -> None:
    with httpx.Client(base_url=site.url) as client:
        for method, path in page_routes():
            if path == "/login" or path == "/":
                continue
            answer = client.request(method, path.format(**rivals))
            assert answer.status_code == 303, (method, path)
            assert re.match(r"/login\?next=", answer.headers["location"]), (method, path)
