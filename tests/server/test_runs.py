"""Workflows and runs over a real server (SQLite and PostgreSQL): stored, validated, run by the
service's worker, followed over Server-Sent Events (with a reconnect), answered, cancelled.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from pardag.tokens import issue
from tests.server.conftest import FLOW, GATED, PATIENCE, Served

BROKEN = """\
name: broken
steps:
  a:
    kind: shell
    command: echo a
  b:
    kind: nosuchkind
    depends_on: a
  c:
    kind: shell
    command: echo c
    depends_on: ghost
"""


def frames(served: Served, run_id: str, last: int | None = None, most: int = 10_000) -> list[Any]:
    """(id, event, data) of the SSE frames of a run's stream, up to ``most`` of them."""
    path = f"/api/runs/{run_id}/events"
    return served.frames(path, last, lambda got: len(got) >= most)


def test_a_posted_workflow_runs_to_success_followed_over_sse(served: Served) -> None:
    workflow = served.workflow("admin", FLOW)
    answer = served.call(
        "operator",
        "POST",
        f"/api/workflows/{workflow}/runs",
        json={"params": {"who": "api"}, "trigger_data": {"from": "test"}},
    )
    assert answer.status_code == 202
    run = answer.json()
    assert (run["org"], run["params"]["who"], run["trigger_data"]) == (
        "acme",
        "api",
        {"from": "test"},
    )
    assert run["status"] in ("queued", "running")  # answered at once, not when it ended

    first = frames(served, run["id"], most=2)  # a client that goes away after two events
    assert [seq for seq, _, _ in first] == [1, 2]
    rest = frames(served, run["id"], last=first[-1][0])  # and comes back with Last-Event-ID
    seqs = [seq for seq, _, _ in first + rest if seq is not None]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert rest[-1][1] == "end" and rest[-1][2]["last"] == seqs[-1]
    kinds = [kind for _, kind, _ in first + rest]
    assert kinds[0] == "run_started" and "run_finished" in kinds
    assert kinds.count("step_succeeded") == 3

    done = served.call("viewer", "GET", f"/api/runs/{run['id']}").json()
    assert done["status"] == "succeeded" and done["claims"] == 1
    assert [(s["step"], s["state"], s["attempts"]) for s in done["steps"]] == [
        ("a", "succeeded", 1),
        ("b", "succeeded", 1),
        ("c", "succeeded", 1),
    ]
    logs = served.call("viewer", "GET", f"/api/runs/{run['id']}/logs?step=a").json()["logs"]
    assert [(p["step"], p["text"]) for p in logs] == [("a", "first api\n")]
    step = served.call("viewer", "GET", f"/api/runs/{run['id']}/steps/c").json()
    assert [a["state"] for a in step["attempts"]] == ["succeeded"]
    # the whole history again from the start, as a long poll
    polled = served.call("viewer", "GET", f"/api/runs/{run['id']}/events?after=0&wait=5").json()
    assert [e["seq"] for e in polled["events"]] == seqs and polled["final"] is True
    assert polled["last"] == seqs[-1]


def test_a_long_poll_waits_for_what_is_new(served: Served) -> None:
    run_id = served.start("operator", served.workflow("admin", FLOW))
    polled = served.call("viewer", "GET", f"/api/runs/{run_id}/events?after=0&wait=30").json()
    assert polled["events"] and polled["events"][0]["seq"] == 1  # returned with the first
    after = polled["last"]
    while not polled["final"]:
        polled = served.call(
            "viewer", "GET", f"/api/runs/{run_id}/events?after={after}&wait=30"
        ).json()
        assert all(e["seq"] > after for e in polled["events"])
        after = polled["last"]
    assert served.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "succeeded"


def test_an_invalid_workflow_is_a_422_listing_every_problem_with_its_line(served: Served) -> None:
    answer = served.call("admin", "POST", "/api/workflows", json={"definition": BROKEN})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_workflow"
    places = sorted((p["step"], p["where"]) for p in error["problems"])
    assert places == [("b", "broken.yaml:7"), ("c", "broken.yaml:12")]
    assert "kind 'nosuchkind' is unknown" in error["message"]
    assert "ghost" in error["message"]
    assert served.call("admin", "GET", "/api/workflows").json()["workflows"] == [
        w
        for w in served.call("admin", "GET", "/api/workflows").json()["workflows"]
        if w["name"] != "broken"
    ]


def test_posting_a_name_again_adds_a_version(served: Served) -> None:
    first = served.workflow("admin", FLOW, name="versioned")
    again = served.workflow("admin", FLOW.replace("world", "there"), name="versioned")
    assert first == again
    got = served.call("viewer", "GET", f"/api/workflows/{first}").json()
    assert [v["version"] for v in got["versions"]] == [1, 2]
    assert "there" in got["definition"]
    assert served.call("admin", "DELETE", f"/api/workflows/{first}").status_code == 200
    assert served.call("viewer", "GET", f"/api/workflows/{first}").status_code == 404


def test_an_approval_is_answered_over_the_api_and_a_worker_goes_on(served: Served) -> None:
    workflow = served.workflow("admin", GATED)
    run_id = served.start("operator", workflow)
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    path = f"/api/runs/{run_id}/steps/review/approve"
    wrong = served.call("approver", "POST", path, json={"input": {"target": "moon"}})
    assert wrong.status_code == 409 and "does not fit" in wrong.json()["error"]["message"]
    assert served.call("viewer", "GET", f"/api/runs/{run_id}").json()["status"] == "paused"
    answer = served.call("approver", "POST", path, json={"input": {"target": "prod"}})
    assert answer.status_code == 202
    done = served.wait_for("viewer", run_id, lambda r: r["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded"
    review = served.call("viewer", "GET", f"/api/runs/{run_id}/steps/review").json()
    assert review["attempts"][-1]["output"] == {"target": "prod"}
    again = served.call("approver", "POST", path, json={"input": {"target": "prod"}})
    assert again.status_code == 409  # finished: nothing waits for an answer
    assert "already finished: succeeded" in again.json()["error"]["message"]


def test_a_rejected_approval_fails_its_step(served: Served) -> None:
    run_id = served.start("operator", served.workflow("admin", GATED))
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    path = f"/api/runs/{run_id}/steps/review/reject"
    assert served.call("approver", "POST", path, json={"reason": "not today"}).status_code == 202
    done = served.wait_for("viewer", run_id, lambda r: r["status"] not in ("queued", "running"))
    assert done["status"] == "failed"
    review = next(s for s in done["steps"] if s["step"] == "review")
    assert review["state"] == "failed" and "not today" in (review["error"] or "")


def test_a_paused_run_is_cancelled(served: Served) -> None:
    run_id = served.start("operator", served.workflow("admin", GATED))
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    answer = served.call("operator", "POST", f"/api/runs/{run_id}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    again = served.call("operator", "POST", f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409 and "already finished" in again.json()["error"]["message"]


def test_runs_are_listed_a_page_at_a_time_without_repeats(served: Served) -> None:
    workflow = served.workflow("admin", FLOW, name="paged")
    started = {served.start("operator", workflow) for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        query = "/api/runs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = served.call("viewer", "GET", query).json()
        assert len(page["runs"]) <= 2
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and started <= set(seen)
    bad = served.call("viewer", "GET", "/api/runs?cursor=nonsense")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_cursor"


def test_bad_requests_are_json_errors_never_500s(served: Served) -> None:
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/api/workflows", {"json": {"format": "yaml"}}, 422, "definition"),
        (
            "POST",
            "/api/workflows",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "invalid",
        ),
        ("POST", "/api/workflows", {"json": {"definition": FLOW, "format": "xml"}}, 422, "format"),
        (
            "POST",
            "/api/workflows",
            {"json": {"definition": "steps: [", "format": "yaml"}},
            422,
            "workflow.yaml",
        ),
        ("GET", "/api/runs?status=bogus", {}, 400, "Invalid status value 'bogus'"),
        ("GET", "/api/runs?limit=0", {}, 422, "limit"),
        ("GET", "/api/nowhere", {}, 404, "/api/nowhere"),
    ]
    for method, path, kw, status, says in cases:
        answer = served.call("admin", method, path, **kw)
        assert answer.status_code == status, (path, answer.text)
        assert says in answer.json()["error"]["message"], answer.text
    workflow = served.workflow("admin", FLOW)
    unknown = served.call(
        "operator", "POST", f"/api/workflows/{workflow}/runs", json={"params": {"nope": 1}}
    )
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]["message"]
    setting = served.call(
        "operator", "POST", f"/api/workflows/{workflow}/runs", json={"settings": {"colour": 1}}
    )
    assert setting.status_code == 422 and "colour" in setting.json()["error"]["message"]
    for wrong in ({"timeout": "soon"}, {"pools": "x"}, {"mode": 5}, {"max_concurrency": True}):
        typed = served.call(
            "operator", "POST", f"/api/workflows/{workflow}/runs", json={"settings": wrong}
        )
        assert typed.status_code == 422, typed.text
        assert f"settings.{next(iter(wrong))}" in typed.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(served: Served) -> None:
    big = {"definition": "# " + "x" * (2 * 1024 * 1024)}
    answer = served.call("admin", "POST", "/api/workflows", json=big)
    assert answer.status_code == 413
    assert "over the server's limit of 1024 KiB" in answer.json()["error"]["message"]

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 65536

    with httpx.Client(base_url=served.url, timeout=PATIENCE) as client:
        streamed = client.post(
            "/api/workflows",
            content=chunks(),
            headers={"Authorization": f"Bearer {served.tokens['admin']}"},
        )
    assert streamed.status_code == 413


def test_revoking_a_token_ends_its_open_event_stream(served: Served) -> None:
    text, record = issue(served.store, org="acme", role="viewer", name="brief", now=time.time())
    run_id = served.start("operator", served.workflow("admin", GATED))
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")  # it streams on

    got: list[str] = []
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {text}"}
    with (
        httpx.Client(base_url=served.url, headers=headers, timeout=PATIENCE) as client,
        client.stream("GET", f"/api/runs/{run_id}/events") as answer,
    ):
        for line in answer.iter_lines():
            got.append(line)
            if line == "event: step_paused":  # caught up: from here it only waits
                served.store.revoke_token(record.token_id, time.time())
    assert "event: error" in got and not any(line == "event: end" for line in got)
    assert any("was revoked" in line for line in got)
    served.call("operator", "POST", f"/api/runs/{run_id}/cancel")


BRANCHED = """\
name: branched
params: {gate: ""}
steps:
  review:
    kind: approval
    prompt: Go?
  slow:
    kind: shell
    command: while [ ! -e "{{ params.gate }}" ]; do sleep 0.05; done
"""


def test_an_answer_waits_until_the_run_has_paused(served: Served, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    workflow = served.workflow("admin", BRANCHED)
    run_id = served.start("operator", workflow, params={"gate": str(gate)})

    def review_waits(run: dict[str, Any]) -> bool:
        return any(s["step"] == "review" and s["state"] == "paused" for s in run["steps"])

    running = served.wait_for("viewer", run_id, review_waits)
    assert running["status"] == "running"  # slow holds the run until the gate opens
    path = f"/api/runs/{run_id}/steps/review/approve"
    early = served.call("approver", "POST", path)
    assert early.status_code == 409 and "not paused yet" in early.json()["error"]["message"]
    gate.touch()
    served.wait_for("viewer", run_id, lambda r: r["status"] == "paused")
    assert served.call("approver", "POST", path).status_code == 202
    done = served.wait_for("viewer", run_id, lambda r: r["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded"


def test_a_run_may_not_widen_where_its_steps_connect(served: Served) -> None:
    workflow = served.workflow("admin", FLOW)
    for setting in ({"http_allow": "*"}, {"dask_address": "tcp://10.0.0.1:8786"}):
        answer = served.call(
            "operator", "POST", f"/api/workflows/{workflow}/runs", json={"settings": setting}
        )
        assert answer.status_code == 422, answer.text
        assert "cannot be set when starting a run" in answer.json()["error"]["message"]
    allowed = served.call(
        "operator", "POST", f"/api/workflows/{workflow}/runs", json={"settings": {"timeout": 60}}
    )
    assert allowed.status_code == 202


def test_a_node_graph_and_a_toml_file_are_stored_and_run_like_yaml(served: Served) -> None:
    graph = (Path(__file__).parents[2] / "examples" / "flows" / "nodegraph_calc.json").read_text()
    toml = 'name = "tomlish"\n[steps.hello]\nkind = "shell"\ncommand = "echo from toml"\n'
    for definition, syntax in ((graph, "json"), (toml, "toml")):
        posted = served.call(
            "admin", "POST", "/api/workflows", json={"definition": definition, "format": syntax}
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["format"] == syntax
        run_id = served.start("operator", posted.json()["id"])
        done = served.wait_for("viewer", run_id, lambda r: r["status"] not in ("queued", "running"))
        assert done["status"] == "succeeded", done
    assert served.call("viewer", "GET", f"/api/runs/{run_id}/logs").json()["logs"][0]["text"] == (
        "from toml\n"
    )
