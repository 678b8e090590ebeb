"""Webhooks over a real server: registered when a workflow is stored, signed as GitHub signs.

``POST /hooks/{org}/{name}`` takes no token: an HMAC-SHA256 of the body keyed with the hook's
secret (shown once, when its workflow is stored). On SQLite and PostgreSQL (``served``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from tests.server.conftest import Served

SIGNATURE = "X-Pardag-Signature"


def flow(hook: str, name: str = "hooked", extra: str = "") -> str:
    return (
        f"name: {name}\n"
        f"triggers:\n  - webhook: {hook}\n{extra}"
        "steps:\n  a:\n    kind: shell\n    command: echo hooked\n"
    )


def store_hooked(served: Served, hook: str, name: str = "hooked") -> tuple[str, str]:
    """Store a workflow with webhook ``hook``: its id and the hook's secret."""
    answer = served.call("admin", "POST", "/api/workflows", json={"definition": flow(hook, name)})
    assert answer.status_code == 201, answer.text
    [trigger] = answer.json()["triggers"]
    assert trigger["url"] == f"/hooks/acme/{hook}" and trigger["kind"] == "webhook"
    return answer.json()["id"], trigger["secret"]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(served: Served, path: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE] = signature
    with httpx.Client(base_url=served.url, timeout=60) as client:  # no token
        return client.post(path, content=body, headers=headers)


def error(answer: httpx.Response) -> Any:
    return answer.json()["error"]


def test_a_signed_body_starts_a_run_with_it_as_trigger_data(served: Served) -> None:
    workflow_id, secret = store_hooked(served, "orders")
    assert secret.startswith("pdgh_") and len(secret) > 40
    body = json.dumps({"order": "A-1", "amount": 250}).encode()
    answer = post(served, "/hooks/acme/orders", body, sign(secret, body))
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert answer.json() == {"run_id": run_id, "status": "queued", "webhook": "orders"}
    run = served.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")
    assert (run["org"], run["workflow"]) == ("acme", "hooked")
    assert run["trigger_data"] == {"order": "A-1", "amount": 250}
    shown = served.call("viewer", "GET", f"/api/workflows/{workflow_id}").json()
    assert [t["name"] for t in shown["triggers"]] == ["orders"]
    assert secret not in json.dumps(shown) and secret not in json.dumps(run)  # shown once only


def test_a_missing_or_wrong_signature_is_a_401(served: Served) -> None:
    _, secret = store_hooked(served, "signed", "signed")
    body = b'{"amount": 1}'
    before = len(served.store.list_runs(workflow="signed"))
    missing = post(served, "/hooks/acme/signed", body, None)
    assert missing.status_code == 401
    assert (
        "webhook 'signed' needs a signature: send X-Pardag-Signature: sha256="
        in error(missing)["message"]
    )
    for wrong in (
        sign("not-the-secret", body),
        sign(secret, body + b" "),  # a body changed on the way
        sign(secret, body).replace("sha256=", "sha1="),
        "sha256=" + "0" * 64,
        "garbage",
    ):
        answer = post(served, "/hooks/acme/signed", body, wrong)
        assert answer.status_code == 401, wrong
        assert error(answer)["message"].startswith("the signature does not match the body")
    assert post(served, "/hooks/acme/signed", body, sign(secret, body).upper()).status_code == 202
    assert len(served.store.list_runs(workflow="signed")) == before + 1  # only the signed one


def test_an_unknown_hook_or_another_organisations_is_a_404(served: Served) -> None:
    _, secret = store_hooked(served, "mine", "mine")
    body = b"{}"
    for path in ("/hooks/acme/nothing", "/hooks/rival/mine", "/hooks/ACME/mine"):
        answer = post(served, path, body, sign(secret, body))
        assert answer.status_code == 404, path
        assert error(answer)["code"] == "not_found"
    rival = served.call("rival", "POST", "/api/workflows", json={"definition": flow("mine")})
    assert rival.status_code == 201  # one name in two organisations: two hooks
    [theirs] = rival.json()["triggers"]
    assert theirs["url"] == "/hooks/rival/mine" and theirs["secret"] != secret
    assert post(served, "/hooks/rival/mine", body, sign(secret, body)).status_code == 401


def test_a_body_that_is_not_a_json_object_or_too_large_is_refused(served: Served) -> None:
    _, secret = store_hooked(served, "shapes", "shapes")
    for body, status, words in (
        (b"not json", 400, "the webhook's body is not JSON"),
        (b"[1, 2]", 400, "the webhook's body is a JSON list; send a JSON object"),
        (b"[" * 100_000, 400, "the webhook's body is not JSON"),
        (b'{"x": "' + b"y" * 300_000 + b'"}', 413, "the webhook's body is over 256 KiB"),
    ):
        answer = post(served, "/hooks/acme/shapes", body, sign(secret, body))
        assert answer.status_code == status, body[:20]
        assert error(answer)["message"].startswith(words)
    too_big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    assert post(served, "/hooks/acme/shapes", too_big, sign(secret, too_big)).status_code == 413
    empty = post(served, "/hooks/acme/shapes", b"", sign(secret, b""))
    assert empty.status_code == 202  # no body: no trigger data


def test_storing_again_keeps_the_secret_and_dropping_the_hook_removes_it(served: Served) -> None:
    workflow_id, secret = store_hooked(served, "kept", "kept")
    again = served.call(
        "admin", "POST", "/api/workflows", json={"definition": flow("kept", "kept")}
    )
    assert again.json()["version"] == 2
    assert [set(t) for t in again.json()["triggers"]] == [
        {"id", "kind", "name", "url"}
    ]  # no secret
    body = b'{"v": 2}'
    assert post(served, "/hooks/acme/kept", body, sign(secret, body)).status_code == 202
    other = flow("renamed", "kept")
    third = served.call("admin", "POST", "/api/workflows", json={"definition": other})
    [renamed] = third.json()["triggers"]
    assert renamed["name"] == "renamed" and "secret" in renamed
    assert post(served, "/hooks/acme/kept", body, sign(secret, body)).status_code == 404
    assert served.call("admin", "DELETE", f"/api/workflows/{workflow_id}").status_code == 200
    gone = post(served, "/hooks/acme/renamed", body, sign(renamed["secret"], body))
    assert gone.status_code == 404


def test_a_hook_name_another_workflow_has_is_a_409_storing_nothing(served: Served) -> None:
    store_hooked(served, "taken", "owner")
    names = [w["name"] for w in served.call("admin", "GET", "/api/workflows").json()["workflows"]]
    answer = served.call(
        "admin", "POST", "/api/workflows", json={"definition": flow("taken", "intruder")}
    )
    assert answer.status_code == 409
    assert error(answer)["message"].startswith("webhook 'taken' belongs to workflow 'owner'")
    after = [w["name"] for w in served.call("admin", "GET", "/api/workflows").json()["workflows"]]
    assert after == names


def test_schedules_are_listed_and_a_bad_one_is_a_422_with_its_line(served: Served) -> None:
    text = flow("ticks", "ticks", '  - cron: "*/5 * * * *"\n    timezone: Europe/Paris\n')
    answer = served.call("admin", "POST", "/api/workflows", json={"definition": text})
    assert answer.status_code == 201, answer.text
    crons = [t for t in answer.json()["triggers"] if t["kind"] == "cron"]
    assert [(t["cron"], t["timezone"]) for t in crons] == [("*/5 * * * *", "Europe/Paris")]
    bad = flow("ticks2", "ticks2", '  - cron: "*/5 * * *"\n')
    refused = served.call("admin", "POST", "/api/workflows", json={"definition": bad})
    assert refused.status_code == 422
    [problem] = refused.json()["error"]["problems"]
    assert problem["where"] == "ticks2.yaml:4"
    assert "cron must be five fields" in problem["message"]


def test_a_node_graphs_trigger_webhook_node_registers_its_hook(served: Served) -> None:
    graph = {
        "name": "graph-hooked",
        "nodes": [
            {"id": "order", "type": "trigger-webhook", "data": {"webhook": "graph-order"}},
            {"id": "say", "type": "shell", "data": {"command": "echo from the graph"}},
        ],
        "edges": [{"source": "order", "target": "say"}],
    }
    body = {"definition": json.dumps(graph), "format": "json"}
    answer = served.call("admin", "POST", "/api/workflows", json=body)
    assert answer.status_code == 201, answer.text
    [hook] = answer.json()["triggers"]
    assert hook["url"] == "/hooks/acme/graph-order"
    payload = b'{"id": "G-1"}'
    started = post(served, hook["url"], payload, sign(hook["secret"], payload))
    assert started.status_code == 202
    final = ("succeeded", "failed")
    run = served.wait_for("viewer", started.json()["run_id"], lambda r: r["status"] in final)
    assert (run["status"], run["trigger_data"]) == ("succeeded", {"id": "G-1"})
