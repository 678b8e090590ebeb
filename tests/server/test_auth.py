"""Tokens, roles and organisations over a real server (SQLite and PostgreSQL).

401 for no token, a malformed, unknown, expired or revoked one; 403 for a role too low; 404
(never 403) for another organisation's workflow or run, whose marker strings never appear in
what acme reads. And every route declares the role it needs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pardag.server.app import PUBLIC, api_routes, create_app
from pardag.server.auth import unguarded
from pardag.store import open_store
from tests.server.conftest import FLOW, MARKER, Served


def test_healthz_needs_no_token(served: Served) -> None:
    answer = served.call(None, "GET", "/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "this needs a token"),
        ("Basic dXNlcjpwYXNz", "Authorization header is malformed"),
        ("Bearer", "Authorization header is malformed"),
        ("Bearer not-a-pardag-token", "the token is malformed"),
        ("Bearer pdg_" + "A" * 43, "not known here"),
    ],
)
def test_a_missing_or_bad_token_is_a_401(served: Served, header: str | None, says: str) -> None:
    headers = {"Authorization": header} if header else {}
    answer = served.call(None, "GET", "/api/workflows", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    error = answer.json()["error"]
    assert error["code"] == "unauthenticated" and says in error["message"]


@pytest.mark.parametrize(("who", "says"), [("expired", "has expired"), ("revoked", "revoked")])
def test_an_expired_or_revoked_token_is_a_401_that_never_shows_it(
    served: Served, who: str, says: str
) -> None:
    answer = served.call(who, "GET", "/api/runs")
    assert answer.status_code == 401
    assert says in answer.json()["error"]["message"]
    assert served.tokens[who] not in answer.text  # the token is never echoed


@pytest.mark.parametrize(
    ("who", "method", "path", "need"),
    [
        ("viewer", "POST", "/api/workflows", "admin"),
        ("operator", "DELETE", "/api/workflows/x", "admin"),
        ("approver", "POST", "/api/workflows", "admin"),
        ("viewer", "POST", "/api/workflows/x/runs", "operator"),
        ("viewer", "POST", "/api/runs/x/cancel", "operator"),
        ("operator", "POST", "/api/runs/x/steps/s/approve", "approver"),
        ("operator", "POST", "/api/runs/x/steps/s/reject", "approver"),
    ],
)
def test_a_role_too_low_is_a_403_naming_the_role_needed(
    served: Served, who: str, method: str, path: str, need: str
) -> None:
    answer = served.call(who, method, path, json={"definition": FLOW})
    assert answer.status_code == 403
    assert f"needs the {need} role" in answer.json()["error"]["message"]


def test_each_role_has_the_rights_of_those_below(served: Served) -> None:
    for who in ("viewer", "operator", "approver", "admin"):
        assert served.call(who, "GET", "/api/workflows").status_code == 200
    workflow = served.workflow("admin", FLOW)
    for who in ("operator", "approver", "admin"):  # an approver may start runs too
        run_id = served.start(who, workflow)
        assert served.call(who, "GET", f"/api/runs/{run_id}").status_code == 200


def test_another_organisations_objects_are_404_and_never_listed(served: Served) -> None:
    theirs = served.workflow("rival", FLOW.replace("world", MARKER), name=f"flow-{MARKER}")
    their_run = served.start("rival", theirs, params={"who": MARKER}, trigger_data={"m": MARKER})
    served.wait_for("rival", their_run, lambda r: r["status"] == "succeeded")
    mine = served.workflow("admin", FLOW)
    served.start("admin", mine)

    paths = [
        ("GET", f"/api/workflows/{theirs}"),
        ("DELETE", f"/api/workflows/{theirs}"),
        ("POST", f"/api/workflows/{theirs}/runs"),
        ("GET", f"/api/runs/{their_run}"),
        ("GET", f"/api/runs/{their_run}/steps/a"),
        ("GET", f"/api/runs/{their_run}/logs"),
        ("GET", f"/api/runs/{their_run}/events?wait=0"),
        ("POST", f"/api/runs/{their_run}/cancel"),
        ("POST", f"/api/runs/{their_run}/steps/a/approve"),
        ("POST", f"/api/runs/{their_run}/retry"),
        ("GET", f"/api/runs/{their_run[:8]}"),  # a prefix of their id finds nothing either
    ]
    seen = []
    for method, path in paths:
        answer = served.call("admin", method, path, json={})
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"  # as for an id nobody has
        seen.append(answer.text)
    for path in ("/api/workflows", "/api/runs?limit=500", "/api/runs?workflow=chain"):
        answer = served.call("admin", "GET", path)
        assert answer.status_code == 200
        assert theirs not in answer.text and their_run not in answer.text
        seen.append(answer.text)
    assert all(MARKER not in text for text in seen)
    # and rival still has all of it: nothing of acme's requests changed it
    assert served.call("rival", "GET", f"/api/workflows/{theirs}").status_code == 200


def test_every_route_declares_the_role_it_needs(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        app = create_app(store)
    routes = api_routes(app)
    assert unguarded(routes) == ["/hooks/{org}/{name}", "/healthz"]  # a webhook is signed
    assert set(unguarded(routes)) <= PUBLIC
    served = {(r.path, m.lower()) for r in routes for m in r.methods or ()}
    schema = app.openapi()["paths"]
    assert served == {(path, m) for path, ops in schema.items() for m in ops}  # none missed


def test_a_route_without_a_role_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a route added without ``need`` is named."""
    with open_store(tmp_path / "runs.db") as store:
        app = create_app(store)

    def leaky() -> dict[str, str]:
        return {}

    app.add_api_route("/api/leaky", leaky, methods=["GET"])
    assert unguarded(api_routes(app)) == ["/hooks/{org}/{name}", "/healthz", "/api/leaky"]


def test_every_route_but_healthz_refuses_a_caller_without_a_valid_token(served: Served) -> None:
    routes = [r for r in api_routes(create_app(served.store)) if r.path not in PUBLIC]
    for route in routes:
        path = route.path.format(workflow_id="w1", run_id="r1", step="s1", name="n1", token_id="t1")
        for method in route.methods or ():
            for who in (None, "expired", "revoked"):
                answer = served.call(who, method, path, json={})
                assert answer.status_code == 401, (method, path, who, answer.text)
