"""Webhook bodies reach the steps as ``trigger``, over a real server (``served``: SQLite and
PostgreSQL): a shell step echoes a body's value (shell metacharacters stay data), a ``when``
reads it, and a node graph's trigger node outputs the body."""

from __future__ import annotations

import json
from typing import Any

from tests.server.conftest import Served
from tests.server.test_hooks import post, sign

ORDERS = """\
name: paid
params:
  order: from-params
  amount: 0
triggers:
  - webhook: paid
steps:
  note:
    kind: shell
    command: echo {{ trigger.order }}
  review:
    kind: shell
    command: echo review {{ params.order }}
    when: trigger.amount > 100
"""

GRAPH = {
    "name": "graphed",
    "nodes": [
        {"id": "hook", "type": "trigger-webhook", "data": {"webhook": "graphed"}},
        {"id": "check", "type": "condition", "data": {"condition": "hook.amount >= 100"}},
        {"id": "big", "data": {"text": "review {{ trigger.order }}"}},
        {"id": "small", "data": {"text": "ship {{ trigger.order }}"}},
    ],
    "edges": [
        {"source": "hook", "target": "check"},
        {"source": "check", "target": "big", "sourceHandle": "true"},
        {"source": "check", "target": "small", "sourceHandle": "false"},
    ],
}


def stored(served: Served, definition: str, fmt: str) -> str:
    """Store ``definition``: its webhook's secret."""
    body = {"definition": definition, "format": fmt}
    answer = served.call("admin", "POST", "/api/workflows", json=body)
    assert answer.status_code == 201, answer.text
    [hook] = answer.json()["triggers"]
    return str(hook["secret"])


def fire(served: Served, hook: str, secret: str, data: dict[str, Any]) -> dict[str, Any]:
    """Post ``data`` signed to webhook ``hook``; the run once final."""
    body = json.dumps(data).encode()
    answer = post(served, f"/hooks/acme/{hook}", body, sign(secret, body))
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    final = ("succeeded", "failed", "cancelled")
    run: dict[str, Any] = served.wait_for("viewer", run_id, lambda r: r["status"] in final)
    return run


def output(served: Served, run: dict[str, Any], step: str) -> Any:
    shown = served.call("viewer", "GET", f"/api/runs/{run['id']}/steps/{step}").json()
    return shown["attempts"][-1]["output"]


def states(run: dict[str, Any]) -> dict[str, str]:
    return {s["step"]: s["state"] for s in run["steps"]}


def test_a_webhook_body_is_what_the_steps_read_as_trigger(served: Served) -> None:
    secret = stored(served, ORDERS, "yaml")
    tricky = "A-1; echo pwned $(id) `id` '\" | exit 3"
    run = fire(served, "paid", secret, {"order": tricky, "amount": 250})
    assert run["status"] == "succeeded", run
    assert output(served, run, "note")["stdout"] == tricky + "\n"  # data, not shell code
    assert output(served, run, "review")["stdout"] == "review from-params\n"  # params stay
    small = fire(served, "paid", secret, {"order": "B-2", "amount": 5})
    assert output(served, small, "note")["stdout"] == "B-2\n"
    assert states(small)["review"] == "skipped"  # 5 > 100 is false


def test_a_node_graphs_trigger_node_outputs_the_webhook_body(served: Served) -> None:
    secret = stored(served, json.dumps(GRAPH), "json")
    body = {"order": "G-7", "amount": 120}
    run = fire(served, "graphed", secret, body)
    assert run["status"] == "succeeded", run
    assert output(served, run, "hook") == body
    assert output(served, run, "big") == "review G-7"
    assert states(run)["small"] == "skipped"
    run = fire(served, "graphed", secret, {"order": "G-8", "amount": 3})
    assert output(served, run, "small") == "ship G-8" and states(run)["big"] == "skipped"
