"""Cancelling a run a ``pardag worker`` process holds, from another process (issue 16).

Real processes on a real store (a SQLite file, and PostgreSQL): the worker is started with
``python -m pardag worker``, the cancel is ``python -m pardag cancel``. The long step is a
shell step that writes its pid and waits for a flag file that never appears, so the step only
ends if the worker stops it; the test then checks that process is gone. Nothing asserts how
long anything took.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pardag
from pardag.history import cancel
from pardag.store import open_store
from pardag.worker import Worker, submit
from tests import test_worker
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)
from tests.test_worker import PATIENCE, REPO, SRC, records, wait_for

store_url = test_worker.store_url  # the fixtures: a SQLite file, then PostgreSQL
project = test_worker.project  # a folder to run in

LONG = """\
name: long
params:
  flag: ""
  pids: ""
steps:
  wait:
    kind: shell
    command: echo $$ > {{ params.pids }}; while [ ! -e {{ params.flag }} ]; do sleep 0.05; done
  after:
    kind: shell
    depends_on: wait
    command: echo never
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(REPO)])
    return env


@pytest.fixture
def worker(project: Path, store_url: str) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "pardag", "worker", "--store", store_url]
    command += ["--lease", "3s", "--poll", "0.05s"]
    with open(project / "worker.err", "wb") as err:
        proc = subprocess.Popen(
            command, cwd=project, env=_env(), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_pardag_cancel_stops_a_run_a_worker_holds_and_the_worker_goes_on(
    project: Path, store_url: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    (project / "long.yaml").write_text(LONG)
    wf = pardag.load(project / "long.yaml")
    flag, pids = tmp_path / "never", tmp_path / "pids"
    (tmp_path / "open").touch()
    long = submit(wf, store=store_url, params={"flag": str(flag), "pids": str(pids)})
    after = submit(
        wf, store=store_url, params={"flag": str(tmp_path / "open"), "pids": "/dev/null"}
    )
    wait_for("the long step to start", lambda: pids.exists() and pids.read_text().strip() != "")
    pid = int(pids.read_text())
    assert alive(pid)
    [held] = records(store_url, [long])
    assert held.status == "running" and held.lease_until is not None

    done = subprocess.run(
        [sys.executable, "-m", "pardag", "cancel", long[:12], "--store", store_url, "--wait"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == 0, done.stderr
    assert f"asked worker {held.worker} to cancel run {long}" in done.stderr
    assert done.stderr.rstrip().endswith(f"run {long} ended cancelled")  # --wait: until then

    [record] = records(store_url, [long])
    assert (record.status, record.error) == ("cancelled", "run cancelled: by `pardag cancel`")
    wait_for("the long step's process to be gone", lambda: not alive(pid))
    with open_store(store_url) as store:
        steps = {s.step_id: (s.state, s.reason) for s in store.get_steps(long)}
    assert steps["wait"] == ("cancelled", "cancelled by `pardag cancel`")
    assert steps.get("after", ("cancelled", None))[0] == "cancelled"  # never started
    wait_for("the lease to be let go", lambda: records(store_url, [long])[0].lease_until is None)

    wait_for("the next queued run", lambda: records(store_url, [after])[0].status != "queued")
    wait_for("it to end", lambda: records(store_url, [after])[0].status != "running")
    assert records(store_url, [after])[0].status == "succeeded"  # the worker went on
    assert worker.poll() is None and not flag.exists()
    assert (
        f"cancelling run {long} (asked by `pardag cancel`)" in (project / "worker.err").read_text()
    )


GATED = """\
name: gated
params:
  flag: ""
steps:
  build:
    kind: shell
    command: while [ ! -e {{ params.flag }} ]; do sleep 0.05; done
  review:
    kind: approval
    depends_on: build
    prompt: Ship it?
"""


def test_a_run_that_paused_before_its_worker_read_the_request_is_cancelled(
    project: Path, store_url: str, tmp_path: Path
) -> None:
    """The worker reads requests every --poll seconds (here: never during the test); a run
    that pauses for an approval meanwhile ends in the worker's hands paused, and the worker
    then cancels it as a paused run, naming who asked."""
    (project / "gated.yaml").write_text(GATED)
    flag = tmp_path / "flag"
    run_id = submit(
        pardag.load(project / "gated.yaml"), store=store_url, params={"flag": str(flag)}
    )
    said: list[str] = []
    with open_store(store_url) as store:
        worker = Worker(store, lease=1800, poll=600, say=said.append)
        serving = threading.Thread(target=worker.serve)
        serving.start()
        try:
            wait_for("step build to start", lambda: bool(store.get_steps(run_id)))
            assert "asked worker" in cancel(run_id, store=store)
            flag.touch()  # build ends, review pauses: the run ends paused in the worker
            wait_for(
                "the run to end", lambda: records(store_url, [run_id])[0].status == "cancelled"
            )
        finally:
            worker.stop()
            serving.join(PATIENCE)
        steps = {s.step_id: (s.state, s.reason) for s in store.get_steps(run_id)}
    assert steps["build"][0] == "succeeded"
    assert steps["review"] == ("cancelled", "cancelled by `pardag cancel`")
    [record] = records(store_url, [run_id])
    assert (record.error, record.lease_until) == ("run cancelled: by `pardag cancel`", None)
    assert any(f"cancelled paused run {run_id}" in line for line in said)
