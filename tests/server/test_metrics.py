"""``GET /metrics`` over a real server (SQLite and PostgreSQL), parsed as Prometheus parses the
text format: runs by status, queue depth, the runs each worker holds and claimed, step
latency and open event streams, all of the token's organisation only.

The service here has no worker of its own, so that queued runs stay queued until a test runs
a ``Worker`` itself.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pardag.states import RunStatus
from pardag.worker import Worker
from tests.server.conftest import FLOW, PATIENCE, Served, served_on

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$'
)
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def idle(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A service without workers."""
    with served_on(request, tmp_path_factory, workers=0) as service:
        yield service


def parse(text: str) -> Samples:
    """Every sample of a text exposition; each family declared (HELP, TYPE) before its samples."""
    declared: dict[str, str] = {}
    out: Samples = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter", "summary", "histogram", "untyped")
            declared[name] = kind
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP "), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(sum|count)$", "", name)
        assert name in declared or family in declared, f"{name} has no TYPE line before it"
        out[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    assert text.endswith("\n")
    return out


def scrape(served: Served, who: str) -> Samples:
    answer = served.call(who, "GET", "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_queued_runs_and_runs_by_status_are_the_organisations_own(idle: Served) -> None:
    before, rival_before = scrape(idle, "viewer"), scrape(idle, "rival")
    mine = idle.workflow("admin", FLOW)
    theirs = idle.workflow("rival", FLOW)
    for _ in range(3):
        idle.start("operator", mine)
    for _ in range(2):
        idle.start("rival", theirs)

    after, rival_after = scrape(idle, "viewer"), scrape(idle, "rival")
    depth = "pardag_queue_depth"
    assert value(after, depth) - value(before, depth) == 3
    assert value(rival_after, depth) - value(rival_before, depth) == 2
    queued = {"status": "queued"}
    assert value(after, "pardag_runs", **queued) == value(after, depth)
    listed = idle.call("viewer", "GET", "/api/runs", params={"status": "queued", "limit": 500})
    assert value(after, depth) == len(listed.json()["runs"])
    statuses = {labels for name, labels in after if name == "pardag_runs"}
    assert statuses == {frozenset({("status", s.value)}) for s in RunStatus}  # 0s too


def test_a_workers_claims_and_the_step_latency_are_counted(idle: Served) -> None:
    mine, theirs = idle.workflow("admin", FLOW), idle.workflow("rival", FLOW)
    for _ in range(2):
        idle.start("operator", mine)
    idle.start("rival", theirs)
    before = scrape(idle, "viewer")
    name = f"metrics-worker-{time.monotonic_ns()}"
    Worker(idle.store, name=name, poll=0.05, say=lambda line: None).serve(until_idle=True)

    after, rival = scrape(idle, "viewer"), scrape(idle, "rival")
    assert value(after, "pardag_queue_depth") == 0
    claimed = value(after, "pardag_worker_claimed_runs", worker=name)
    assert claimed == value(before, "pardag_queue_depth")  # every acme run it took, not rival's
    assert claimed >= 2 and value(rival, "pardag_worker_claimed_runs", worker=name) >= 1
    assert value(after, "pardag_worker_runs", worker=name) == 0  # it holds none now
    succeeded = value(after, "pardag_runs", status="succeeded")
    assert succeeded - value(before, "pardag_runs", status="succeeded") == claimed

    durations = sorted(step_durations(idle))
    assert value(after, "pardag_step_duration_seconds_count") == len(durations)
    assert math.isclose(value(after, "pardag_step_duration_seconds_sum"), sum(durations))
    top = value(after, "pardag_step_duration_seconds", quantile="0.99")
    assert top == durations[math.ceil(0.99 * len(durations)) - 1] and top >= 0.3  # b sleeps


def step_durations(served: Served) -> list[float]:
    """What each step attempt of acme's finished runs took, read over the API."""
    out = []
    runs = served.call("viewer", "GET", "/api/runs", params={"limit": 500}).json()["runs"]
    for run in runs:
        if run["finished_at"] is None:
            continue
        for step in served.call("viewer", "GET", f"/api/runs/{run['id']}").json()["steps"]:
            if step["state"] in ("succeeded", "failed") and not step["cached"]:
                out.append(step["finished_at"] - step["started_at"])
    return out


def test_open_event_streams_are_counted_for_their_organisation(idle: Served) -> None:
    run_id = idle.start("operator", idle.workflow("admin", FLOW))  # queued: its stream stays
    opened, close = threading.Event(), threading.Event()

    def follow() -> None:
        headers = {"Accept": "text/event-stream"}
        path = f"/api/runs/{run_id}/events"
        with idle.client("viewer") as client, client.stream("GET", path, headers=headers):
            opened.set()
            close.wait(PATIENCE)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        assert opened.wait(PATIENCE)
        assert value(scrape(idle, "viewer"), "pardag_event_streams") == 1
        assert value(scrape(idle, "rival"), "pardag_event_streams") == 0
    finally:
        close.set()
        follower.join(PATIENCE)
    until(lambda: value(scrape(idle, "viewer"), "pardag_event_streams") == 0)
    idle.call("operator", "POST", f"/api/runs/{run_id}/cancel")


def until(done: Any) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_metrics_need_a_token(idle: Served) -> None:
    answer = idle.call(None, "GET", "/metrics")
    assert answer.status_code == 401
    assert "this needs a token" in answer.json()["error"]["message"]
    assert idle.call("expired", "GET", "/metrics").status_code == 401
