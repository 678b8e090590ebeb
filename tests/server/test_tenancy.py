"""The tenancy matrix: every route of the app x every kind of caller -> the status expected.

Routes come from the app's own table (``api_routes``), so a route added later is covered at
once: its declared role decides who gets a 403, and another organisation's admin a 404 for
any of acme's objects it names. Routes known here are also called with a body that succeeds,
on objects of their own (a cancelled run is not cancelled twice); a route not known here must
at least let its roles past the gate without a 500. Nothing acme reads carries a rival
``MARKER``. One server per backend (SQLite, PostgreSQL) for the whole module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from pardag.server.app import api_routes, create_app
from pardag.server.auth import ROLE_OF
from pardag.tokens import ROLES, outranks
from tests.server.conftest import FLOW, GATED, MARKER, Served

BAD = {
    "no token": None,
    "malformed": "Bearer not-a-pardag-token",
    "expired": "expired",
    "revoked": "revoked",
}
"""Callers refused whatever the route: a 401."""
APPROVAL = {"input": {"target": "staging"}}


@dataclass
class Objects:
    """Acme's objects the routes name, and makers of fresh ones for routes that change them."""

    workflow: str
    run: str
    fresh_workflow: Callable[[], str]
    paused_run: Callable[[], str]


KNOWN: dict[tuple[str, str], tuple[int, str, Any]] = {
    ("GET", "/api/workflows"): (200, "", None),
    ("POST", "/api/workflows"): (201, "", {"definition": FLOW}),
    ("GET", "/api/workflows/{workflow_id}"): (200, "", None),
    ("DELETE", "/api/workflows/{workflow_id}"): (200, "fresh_workflow", None),
    ("POST", "/api/workflows/{workflow_id}/runs"): (202, "", {"params": {"who": "matrix"}}),
    ("GET", "/api/runs"): (200, "", None),
    ("GET", "/api/runs/{run_id}"): (200, "", None),
    ("GET", "/api/runs/{run_id}/steps/{step}"): (200, "", None),
    ("GET", "/api/runs/{run_id}/logs"): (200, "", None),
    ("GET", "/api/runs/{run_id}/events"): (200, "", None),
    ("GET", "/api/events"): (200, "", None),
    ("POST", "/api/runs/{run_id}/cancel"): (200, "paused_run", None),
    ("POST", "/api/runs/{run_id}/steps/{step}/approve"): (202, "paused_run", APPROVAL),
    ("POST", "/api/runs/{run_id}/steps/{step}/reject"): (202, "paused_run", {"reason": "no"}),
}
"""(method, path) -> (the status a permitted caller gets, the maker of a fresh object it
needs, the body)."""


ACME_OBJECTS = ("workflow_id", "run_id", "token_id")
"""Path parameters that name an object of acme's (another organisation's caller: a 404); a
secret's ``name`` is looked up in the caller's own organisation."""


def _role(route: APIRoute) -> str | None:
    roles = [ROLE_OF[d.call] for d in route.dependant.dependencies if d.call in ROLE_OF]
    return roles[0] if roles else None


@pytest.fixture(scope="module")
def objects(served: Served) -> Iterator[Objects]:
    workflow = served.workflow("admin", FLOW)
    run = served.start("operator", workflow)
    served.wait_for("viewer", run, lambda r: r["status"] == "succeeded")
    gated = served.workflow("admin", GATED)
    waiting = [served.start("operator", gated) for _ in range(7)]

    def paused_run() -> str:
        run_id = waiting.pop()
        served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
        return run_id

    yield Objects(workflow, run, lambda: served.workflow("admin", FLOW, name="doomed"), paused_run)
    for run_id in waiting:
        served.call("admin", "POST", f"/api/runs/{run_id}/cancel")


def _routes(served: Served) -> list[APIRoute]:
    return [r for r in api_routes(create_app(served.store)) if _role(r) is not None]


def _path(route: APIRoute, objects: Objects, fresh: str) -> str:
    run = objects.paused_run() if fresh == "paused_run" else objects.run
    workflow = objects.fresh_workflow() if fresh == "fresh_workflow" else objects.workflow
    step = "review" if fresh == "paused_run" else "a"
    path = route.path.format(
        workflow_id=workflow, run_id=run, step=step, name="MATRIX_SECRET", token_id="t1"
    )
    return path + ("?wait=0" if path.endswith("events") else "")


def _call(served: Served, who: str | None, method: str, path: str, body: Any) -> httpx.Response:
    if who is not None and who.startswith("Bearer"):
        return served.call(None, method, path, json=body, headers={"Authorization": who})
    return served.call(who, method, path, json=body)


def test_every_route_answers_every_caller_as_expected(served: Served, objects: Objects) -> None:
    wrong = []
    for route in _routes(served):
        need = _role(route)
        assert need is not None
        for method in sorted(route.methods or ()):
            status, fresh, body = KNOWN.get((method, route.path), (None, "", {}))
            for who in (*BAD.values(), "rival", *ROLES):
                permitted = who in ROLES and outranks(who, need)
                path = _path(route, objects, fresh if permitted else "")
                answer = _call(served, who, method, path, body)
                expected = _expected(who, need, route, status)
                if not _fits(answer.status_code, expected):
                    wrong.append((method, path, who, answer.status_code, expected, answer.text))
                if who != "rival":
                    assert MARKER not in answer.text, (method, path, who)
    assert wrong == []


def _expected(who: str | None, need: str, route: APIRoute, status: int | None) -> Any:
    """The status ``who`` must get: a number, or ``"passes"`` (past the gate, no 500)."""
    if who not in ROLES and who != "rival":
        return 401
    if who == "rival":  # a path naming one of acme's objects; a name is in its own org
        return 404 if any(f"{{{p}}}" in route.path for p in ACME_OBJECTS) else "passes"
    if not outranks(who, need):
        return 403
    return status if status is not None else "passes"


def _fits(got: int, expected: Any) -> bool:
    if expected == "passes":
        return got not in (401, 403) and got < 500
    return bool(got == expected)
