"""``GET /api/events``, every run of the caller's organisation in one stream, over a real
server (SQLite and PostgreSQL); and PostgreSQL's notices waking the streams.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx

from pardag.store import open_store
from pardag.tokens import issue
from tests.server.conftest import FLOW, MARKER, PATIENCE, Served, serving
from tests.store.conftest import own_schema


def _finished(runs: set[str]) -> Any:
    """``until`` of ``Served.frames``: once each of ``runs`` has sent ``run_finished``."""

    def done(got: list[Any]) -> bool:
        ended = {data["run"] for _, kind, data in got if kind == "run_finished"}
        return runs <= ended

    return done


def test_the_stream_of_all_runs_resumes_without_gap_or_duplicate(served: Served) -> None:
    mine = served.workflow("admin", FLOW)
    theirs = served.workflow("rival", FLOW, name=f"flow-{MARKER}")
    runs = {served.start("operator", mine), served.start("operator", mine)}
    served.start("rival", theirs, params={"who": MARKER})

    first = served.frames("/api/events", until=lambda got: len(got) >= 3)  # goes away
    rest = served.frames("/api/events", last=first[-1][0], until=_finished(runs))  # comes back
    got = first + rest
    ids = [ident for ident, _, _ in got]
    assert ids == sorted(set(ids))  # rising: no duplicate
    assert all(data["id"] == ident for ident, _, data in got)
    assert MARKER not in repr(got)
    for run_id in runs:  # no gap: every event of each run, in its order
        sent = [data["seq"] for _, _, data in got if data["run"] == run_id]
        assert sent == [e.seq for e in served.store.get_events(run_id)]
    others = {r.run_id for r in served.store.list_runs(org="rival")}
    assert not others & {data["run"] for _, _, data in got}


def test_the_stream_of_all_runs_long_polls(served: Served) -> None:
    start = served.call("viewer", "GET", "/api/events?after=0").json()
    after = start["last"]
    while start["events"]:  # skip what earlier tests left
        start = served.call("viewer", "GET", f"/api/events?after={after}").json()
        after = start["last"]
    run_id = served.start("operator", served.workflow("admin", FLOW))
    polled = served.call("viewer", "GET", f"/api/events?after={after}&wait=30").json()
    assert polled["events"] and polled["final"] is False  # returned with the first new one
    assert all(e["id"] > after and e["run"] == run_id for e in polled["events"])
    assert polled["last"] == polled["events"][-1]["id"]
    served.wait_for("viewer", run_id, lambda r: r["status"] == "succeeded")


def test_a_bad_last_event_id_or_after_is_a_4xx(served: Served) -> None:
    for bad in ("run-7", "-1", str(2**63)):  # the last: over any number a store holds
        answer = served.call(
            "viewer",
            "GET",
            "/api/events",
            headers={"Accept": "text/event-stream", "Last-Event-ID": bad},
        )
        assert answer.status_code == 400
        assert "is not an event number" in answer.json()["error"]["message"]
    answer = served.call("viewer", "GET", f"/api/events?after={2**63}")  # a 500 once
    assert answer.status_code == 422 and "after" in answer.json()["error"]["message"]


def test_revoking_a_token_ends_its_stream_of_all_runs(served: Served) -> None:
    text, record = issue(served.store, org="acme", role="viewer", name="brief", now=time.time())
    got: list[str] = []
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {text}"}
    last = served.call("viewer", "GET", "/api/events?after=0").json()["last"]
    with (
        httpx.Client(base_url=served.url, headers=headers, timeout=PATIENCE) as client,
        client.stream("GET", f"/api/events?after={2**40 + last}") as answer,  # only waits
    ):
        served.store.revoke_token(record.token_id, time.time())
        got = list(answer.iter_lines())
    assert "event: error" in got and any("was revoked" in line for line in got)


def test_postgresql_notices_wake_the_streams(postgres: str) -> None:
    """Streams that would read the store only once an hour deliver the whole run: notices
    woke them (SQLite has none; its streams poll)."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store(stack.enter_context(own_schema(postgres))))
        served = stack.enter_context(serving(store, poll=3600.0, fallback=3600.0))
        run_id = served.start("operator", served.workflow("admin", FLOW))
        got = served.frames(f"/api/runs/{run_id}/events")
        assert got[-1][1] == "end" and [kind for _, kind, _ in got].count("step_succeeded") == 3
        everything = served.frames("/api/events", until=_finished({run_id}))
        assert [d["seq"] for _, _, d in everything] == [e.seq for e in store.get_events(run_id)]
