"""The service's egress preset, with real HTTP steps against a real loopback server: a run the
API starts may not reach loopback (its step fails saying how to allow it, and the server sees
no request); a run queued from the command line may, as before; so may a run of an
organisation the operator allowed (``--allow-private-egress``). SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pardag
from pardag.egress import EgressPolicy, service_floor
from pardag.store import open_store
from pardag.worker import submit
from tests.kinds.test_http_egress import serving as target
from tests.server.conftest import PATIENCE, Served, served_on
from tests.server.test_serve import _start as start_serve
from tests.server.test_serve import _stop as stop_serve
from tests.store.conftest import own_schema

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A service whose operator allows organisation ``rival`` private addresses."""
    with served_on(request, tmp_path_factory, allow_private_egress=("rival",)) as service:
        yield service


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1: its URL, and the paths it was asked for."""
    with target("127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.hits


def fetch(url: str, path: str) -> str:
    return f"name: fetch\nsteps:\n  get:\n    kind: http\n    url: {url}{path}\n"


def ended(served: Served, who: str, run_id: str) -> dict[str, object]:
    run = served.wait_for(who, run_id, lambda r: r["status"] in ("succeeded", "failed"))
    [step] = served.call(who, "GET", f"/api/runs/{run_id}").json()["steps"]
    return {"status": run["status"], "error": step["error"]}


def test_a_run_the_api_starts_cannot_reach_loopback_and_is_told_how(
    guarded: Served, local: tuple[str, list[str]]
) -> None:
    url, hits = local
    run_id = guarded.start("operator", guarded.workflow("admin", fetch(url, "/from-api")))
    run = ended(guarded, "viewer", run_id)
    assert run["status"] == "failed"
    assert "/from-api" not in hits  # refused before connecting
    error = str(run["error"])
    assert "127.0.0.1 is denied by the egress preset 'private' (127.0.0.0/8, loopback)" in error
    assert "a run the service started may not reach loopback" in error
    assert "pardag serve --allow-private-egress acme" in error

    retried = guarded.call("operator", "POST", f"/api/runs/{run_id}/retry", json={})
    assert retried.status_code == 202, retried.text  # a retry keeps the run's origin
    again = guarded.wait_for("viewer", run_id, lambda r: r["status"] in ("succeeded", "failed"))
    attempts = guarded.call("viewer", "GET", f"/api/runs/{run_id}/steps/get").json()["attempts"]
    assert (again["status"], len(attempts)) == ("failed", 2)
    assert "the egress preset 'private'" in str(attempts[-1]["error"])
    assert "/from-api" not in hits


def test_a_run_of_an_organisation_the_operator_allowed_reaches_it(
    guarded: Served, local: tuple[str, list[str]]
) -> None:
    url, hits = local
    run_id = guarded.start("rival", guarded.workflow("rival", fetch(url, "/allowed")))
    assert ended(guarded, "rival", run_id) == {"status": "succeeded", "error": None}
    assert "/allowed" in hits


def test_a_run_queued_from_the_command_line_keeps_todays_behaviour(
    guarded: Served, local: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = local
    flow = tmp_path / "fetch.yaml"
    flow.write_text(fetch(url, "/from-cli"))
    command = [sys.executable, "-m", "pardag", "run", str(flow), "--queue", "--json"]
    command += ["--store", guarded.store.url, "--org", "acme"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=PATIENCE)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    assert ended(guarded, "viewer", run_id) == {"status": "succeeded", "error": None}
    assert "/from-cli" in hits


def test_the_workflows_own_allowance_does_not_lift_the_floor() -> None:
    own = EgressPolicy(allow=["127.0.0.1", "*"])
    assert own.check("127.0.0.1", 80, ["127.0.0.1"]) is None
    floored = EgressPolicy(allow=["127.0.0.1", "*"], floor=service_floor("acme"))
    refused = floored.check("127.0.0.1", 80, ["127.0.0.1"])
    assert refused is not None and "--allow-private-egress acme" in str(refused)
    assert floored.check_name("localhost", 80) is not None
    assert floored.check("example.com", 443, ["93.184.216.34"]) is None
    assert not floored.open and EgressPolicy(floor=None).open


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_worker_process_applies_the_preset_unless_its_flag_allows_the_organisation(
    backend: str,
    request: pytest.FixtureRequest,
    local: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, hits = local
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            store_url = str(tmp_path / "runs.db")
        else:
            store_url = stack.enter_context(own_schema(request.getfixturevalue("postgres")))
        store = stack.enter_context(open_store(store_url))
        flow = tmp_path / "fetch.yaml"
        queued = {}
        for org in ("trusted", "other"):
            flow.write_text(fetch(url, f"/worker-{org}"))
            queued[org] = submit(pardag.load(flow), store=store, org=org, via="webhook")
        command = [sys.executable, "-m", "pardag", "worker", "--until-idle", "--poll", "0.05s"]
        command += ["--store", store.url, "--allow-private-egress", "trusted"]
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=PATIENCE)
        assert done.returncode == 0, done.stderr
        statuses = {org: store.get_run(run_id) for org, run_id in queued.items()}
        assert {org: r.status for org, r in statuses.items() if r} == {
            "trusted": "succeeded",
            "other": "failed",
        }
        [step] = store.get_steps(queued["other"])
        assert "--allow-private-egress other" in (step.error or "")
    assert "/worker-trusted" in hits and "/worker-other" not in hits


def test_pardag_serve_allows_the_organisations_its_flag_names_and_says_so(
    local: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = local
    process, api, token = start_serve(tmp_path / "runs.db", "--allow-private-egress", "default")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api, headers=auth, timeout=PATIENCE) as client:
            body = {"definition": fetch(url, "/served")}
            workflow = client.post("/api/workflows", json=body).json()["id"]
            run = client.post(f"/api/workflows/{workflow}/runs", json={}).json()["id"]
            deadline = time.monotonic() + PATIENCE
            while (status := client.get(f"/api/runs/{run}").json()["status"]) in (
                "queued",
                "running",
            ):
                assert time.monotonic() < deadline, "the run never ended"
                time.sleep(0.05)
    finally:
        code, err = stop_serve(process)
    assert (status, code) == ("succeeded", 0), err
    assert "/served" in hits
    assert "the service's runs of default may reach loopback" in " ".join(err.split())
