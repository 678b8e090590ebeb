"""``pardag serve`` as a user starts it: a real process, its printed URL and token used.

The store has no token, so the command makes an admin token of ``default`` and prints it once;
a workflow posted with it runs in the command's own worker. SIGINT stops it, exit 0. A second
start on the same store makes no new token.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import pardag
from pardag.store import open_store
from tests.server.conftest import FLOW, PATIENCE

SRC = Path(pardag.__file__).resolve().parent.parent


def _start(store: Path, *more: str) -> tuple[subprocess.Popen[str], str, str | None]:
    """The process, its URL and the token it printed (None if it printed none)."""
    env = {k: v for k, v in os.environ.items() if k != "PARDAG_STORE"} | {"PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pardag", "serve", "--port", "0", "--store", str(store), *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=store.parent,
    )
    assert process.stdout is not None
    token = None
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line, f"pardag serve exited: {process.communicate()}"
        if found := re.search(r"(pdg_[A-Za-z0-9_-]{43})", line):
            token = found.group(1)
        if found := re.search(r"pardag serve: (http://127\.0\.0\.1:\d+) ", line):
            return process, found.group(1), token
    raise AssertionError("pardag serve printed no URL")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=PATIENCE)
    return process.returncode, err


def test_pardag_serve_prints_a_first_token_that_works(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    process, url, token = _start(store)
    try:
        assert token is not None
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=PATIENCE) as client:
            assert client.get("/api/openapi.json").json()["info"]["title"] == "pardag"
            posted = client.post("/api/workflows", json={"definition": FLOW})
            assert posted.status_code == 201
            run = client.post(f"/api/workflows/{posted.json()['id']}/runs", json={}).json()
            assert run["org"] == "default"
            deadline = time.monotonic() + PATIENCE
            while client.get(f"/api/runs/{run['id']}").json()["status"] != "succeeded":
                assert time.monotonic() < deadline, "the run never ended"
                time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=PATIENCE, follow_redirects=True) as browser:
            assert browser.get("/").url.path == "/login"  # the page, signed out
            browser.post("/login", data={"token": token})  # the token signs the page in
            listed = browser.get("/runs")
            assert listed.url.path == "/runs" and run["id"][:12] in listed.text
            assert browser.get("/static/js/run.js").status_code == 200  # its files ship too
    finally:
        code, err = _stop(process)
    assert code == 0, err
    assert token not in err  # printed once, on stdout, and nowhere else

    again, _, second = _start(store)  # a store with a token: none made, none printed
    code, err = _stop(again)
    assert second is None and code == 0, err


def test_only_loopback_addresses_count_as_local() -> None:
    from pardag.server.service import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "example.com", ""]))


def test_a_port_in_use_is_an_error_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "PARDAG_STORE"} | {
            "PYTHONPATH": str(SRC)
        }
        done = subprocess.run(
            [sys.executable, "-m", "pardag", "serve", "--port", str(port), "--store", "s.db"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "another --port" in done.stderr
    assert "Traceback" not in done.stderr


STUCK = """\
name: stuck
params: {gate: ""}
steps:
  wait:
    kind: shell
    command: while [ ! -e "{{ params.gate }}" ]; do sleep 0.05; done
"""


def test_a_first_sigint_waits_for_the_runs_in_hand_a_second_leaves(tmp_path: Path) -> None:
    process, url, token = _start(tmp_path / "runs.db")
    assert process.stderr is not None
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=PATIENCE) as client:
        workflow = client.post("/api/workflows", json={"definition": STUCK}).json()["id"]
        gate = {"gate": str(tmp_path / "never")}
        run = client.post(f"/api/workflows/{workflow}/runs", json={"params": gate}).json()
        deadline = time.monotonic() + PATIENCE
        while client.get(f"/api/runs/{run['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    said = ""
    while "waiting for 1 run(s) in hand" not in said:
        line = process.stderr.readline()
        assert line, f"pardag serve stopped without waiting: {said}"
        said += line
    assert run["id"] in said and process.poll() is None  # it waits for the run
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=PATIENCE)
    assert process.returncode == 130
    assert "leaving now; the leases of runs " + run["id"] in rest
    with open_store(tmp_path / "runs.db") as store:
        left = store.get_run(run["id"])
    assert left is not None and left.status == "running" and left.lease_until is not None
