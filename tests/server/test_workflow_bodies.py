"""``POST /api/workflows`` taking a workflow file as the body itself, and ``GET /api/runs``'s
``since``: on the real service (SQLite and PostgreSQL, one server per backend)."""

from __future__ import annotations

import json
import time

import httpx

from tests.server.conftest import FLOW, Served

TOML = """\
name = "from-toml"

[steps.hello]
kind = "shell"
command = "echo toml"
"""


def post_file(served: Served, who: str, text: str, kind: str, query: str = "") -> httpx.Response:
    """POST ``text`` as the body itself, with content type ``kind``."""
    headers = {"Content-Type": kind}
    return served.call(who, "POST", "/api/workflows" + query, content=text, headers=headers)


def test_a_workflow_file_is_the_body_in_any_of_its_syntaxes(served: Served) -> None:
    yaml = post_file(served, "admin", FLOW, "application/yaml", "?name=raw-yaml")
    assert yaml.status_code == 201, yaml.text
    assert (yaml.json()["name"], yaml.json()["format"]) == ("raw-yaml", "yaml")
    toml = post_file(served, "admin", TOML, "application/toml")
    assert toml.status_code == 201, toml.text
    assert (toml.json()["name"], toml.json()["format"]) == ("from-toml", "toml")
    steps = {"name": "from-json", "steps": {"hi": {"kind": "shell", "command": "echo json"}}}
    raw_json = served.call("admin", "POST", "/api/workflows", json=steps)
    assert raw_json.status_code == 201, raw_json.text
    assert (raw_json.json()["name"], raw_json.json()["format"]) == ("from-json", "json")
    run = served.start("operator", raw_json.json()["id"])
    done = served.wait_for("viewer", run, lambda r: r["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded"


def test_a_raw_body_is_validated_as_a_file_is(served: Served) -> None:
    broken = FLOW.replace("kind: shell", "kind: shel", 1)
    answer = post_file(served, "admin", broken, "text/yaml")
    assert answer.status_code == 422, answer.text
    assert ":5:" in answer.text and "shel" in answer.text  # the line of the unknown kind
    refused = post_file(served, "admin", "steps: {}", "text/plain")
    assert refused.status_code == 415
    assert "application/yaml" in refused.json()["error"]["message"]
    viewer = post_file(served, "viewer", FLOW, "application/yaml")
    assert viewer.status_code == 403  # the role is checked whatever the body


def test_runs_since_a_time(served: Served) -> None:
    workflow = served.workflow("admin", FLOW, name="since")
    first = served.start("operator", workflow)
    time.sleep(0.05)  # two creation times apart; nothing asserts how long anything took
    middle = time.time()
    time.sleep(0.05)
    second = served.start("operator", workflow)
    found = served.call("viewer", "GET", f"/api/runs?since={middle}").json()
    ids = [r["id"] for r in found["runs"]]
    assert second in ids and first not in ids
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle - 3600)) + "Z"
    hour = served.call("viewer", "GET", f"/api/runs?since={iso}").json()
    assert {first, second} <= {r["id"] for r in hour["runs"]}
    bad = served.call("viewer", "GET", "/api/runs?since=yesterday")
    assert bad.status_code == 400 and "ISO 8601" in json.dumps(bad.json())
