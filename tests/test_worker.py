"""The run queue end to end: ``pardag worker`` processes claiming queued runs from one store.

Real processes on a real store (a SQLite file, and PostgreSQL): workers started with
``python -m pardag worker``, killed with SIGKILL or stopped with SIGTERM. Every step appends
``RUN:STEP`` to an external ledger (one ``O_APPEND`` write), so a test counts what ran across
processes without trusting the store it checks. Leases are 1 s, so a killed worker's run is
taken over quickly; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pardag
from pardag.cli import main
from pardag.owner import parse
from pardag.store import RunRecord, open_store
from pardag.worker import Worker, submit
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)

SRC = Path(pardag.__file__).resolve().parent.parent
REPO = Path(__file__).resolve().parent.parent
PATIENCE = 60.0
"""Seconds a test waits for what must happen before it fails (a guard, not a measure)."""

FLOW = """\
name: queued
params:
  n: 0
  ledger: ""
  gate: ""
steps:
  a:
    function: qsteps:a
  b:
    function: qsteps:b
    depends_on: a
  c:
    function: qsteps:c
    depends_on: b
"""

STEPS = """\
import os
import time


def _mark(params, name):
    fd = os.open(params["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{params['n']}:{name}\\n".encode())
    finally:
        os.close(fd)


def a(params):
    _mark(params, "a")
    time.sleep(0.02)  # long enough for two workers to overlap
    return params["n"]


def b(a, params):
    _mark(params, "b")
    while params["gate"] and not os.path.exists(params["gate"]):
        time.sleep(0.02)  # held here until the test opens the gate
    return a + 1


def c(b, params):
    _mark(params, "c")
    return b * 2
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flow.yaml").write_text(FLOW)
    (folder / "qsteps.py").write_text(STEPS)
    return folder


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


def executions(ledger: Path) -> Counter[str]:
    return Counter(ledger.read_text().split()) if ledger.exists() else Counter()


def queue_runs(project: Path, url: str, ledger: Path, count: int, **params: object) -> list[str]:
    wf = pardag.load(project / "flow.yaml")
    return [
        submit(wf, store=url, params={"n": n, "ledger": str(ledger), **params})
        for n in range(count)
    ]


class Workers:
    """``pardag worker`` processes started in ``project``, stopped at the end of the test."""

    def __init__(self, project: Path, url: str) -> None:
        self.project, self.url = project, url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_")}
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(REPO)])
        command = [sys.executable, "-m", "pardag", "worker", "--store", self.url]
        command += ["--lease", "1s", "--poll", "0.05s", *flags]
        with open(self.project / f"worker{n}.err", "wb") as err:
            proc = subprocess.Popen(
                command, cwd=self.project, env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        self.procs.append(proc)
        wait_for(f"worker {n} to start", lambda: "stops it" in self.log(n))  # signals handled
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        """SIGTERM: the worker claims nothing more and exits once its runs ended."""
        proc.send_signal(signal.SIGTERM)
        return proc.wait(PATIENCE)

    def log(self, n: int) -> str:
        return (self.project / f"worker{n}.err").read_text()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(project: Path, store_url: str) -> Iterator[Workers]:
    started = Workers(project, store_url)
    try:
        yield started
    finally:
        started.close()


def wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not ready():
        assert time.monotonic() < deadline, f"waited {PATIENCE:g}s for {what}"
        time.sleep(0.05)


def records(url: str, run_ids: list[str]) -> list[RunRecord]:
    with open_store(url) as store:
        found = [store.get_run(run_id) for run_id in run_ids]
    assert all(r is not None for r in found)
    return [r for r in found if r is not None]


def all_final(url: str, run_ids: list[str]) -> Callable[[], bool]:
    return lambda: all(r.status not in ("queued", "running") for r in records(url, run_ids))


# -- workers running queued runs ----------------------------------------------------------------


def test_two_workers_run_ten_queued_runs_each_exactly_once(
    project: Path, store_url: str, ledger: Path, workers: Workers
) -> None:
    first, second = workers.start("--max-runs", "2"), workers.start("--max-runs", "2")
    run_ids = queue_runs(project, store_url, ledger, 10)
    wait_for("the ten runs to end", all_final(store_url, run_ids))
    assert workers.stop(first) == 0 and workers.stop(second) == 0
    done = records(store_url, run_ids)
    assert [(r.status, r.error) for r in done] == [("succeeded", None)] * 10
    assert executions(ledger) == Counter(f"{n}:{s}" for n in range(10) for s in "abc")
    assert {r.claims for r in done} == {1} and {r.lease_until for r in done} == {None}
    with open_store(store_url) as store:
        for n, run_id in enumerate(run_ids):
            outputs = {s.step_id: s.output_json for s in store.get_steps(run_id)}
            assert outputs == {"a": str(n), "b": str(n + 1), "c": str((n + 1) * 2)}


def test_a_killed_workers_run_is_taken_over_and_its_finished_steps_do_not_run_again(
    project: Path, store_url: str, ledger: Path, workers: Workers, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    [run_id] = queue_runs(project, store_url, ledger, 1, gate=str(gate))
    doomed = workers.start()
    wait_for("step b to start", lambda: executions(ledger)["0:b"] == 1)
    [held] = records(store_url, [run_id])
    doomed.kill()  # SIGKILL: no handler, no release; its lease just stops being renewed
    doomed.wait()
    gate.touch()
    heir = workers.start()
    wait_for("the run to end", all_final(store_url, [run_id]))
    assert workers.stop(heir) == 0
    [done] = records(store_url, [run_id])
    assert (done.status, done.claims) == ("succeeded", 2)
    assert held.worker is not None and done.worker not in (None, held.worker)
    assert "taking over run " + run_id in workers.log(1)
    # a finished before the kill: never again; b was running: again (at least once); c once
    assert executions(ledger) == Counter({"0:a": 1, "0:b": 2, "0:c": 1})
    with open_store(store_url) as store:
        attempts = Counter(s.step_id for s in store.get_steps(run_id))
    assert attempts == Counter({"a": 1, "b": 2, "c": 1})


def test_a_worker_killed_among_twenty_runs_loses_none_and_reruns_no_finished_step(
    project: Path, store_url: str, ledger: Path, workers: Workers
) -> None:
    """The crash test of issue 16: two workers share 20 queued runs; one is SIGKILLed while
    runs are under way. Every run completes; a step the store held as succeeded at the kill
    never runs again (the ledger, written by the steps themselves, counts it)."""
    doomed, survivor = workers.start("--max-runs", "4"), workers.start("--max-runs", "4")
    run_ids = queue_runs(project, store_url, ledger, 20)

    def doomed_holds_a_run() -> bool:
        held = [r for r in records(store_url, run_ids) if r.status == "running"]
        owners = [parse(r.worker) for r in held]
        return any(o is not None and o.pid == doomed.pid for o in owners)

    wait_for("a third of the steps", lambda: sum(executions(ledger).values()) >= 20)
    wait_for("the doomed worker to hold a run", doomed_holds_a_run)
    doomed.kill()
    doomed.wait()
    with open_store(store_url) as store:
        finished = {
            f"{n}:{s.step_id}"
            for n, run_id in enumerate(run_ids)
            for s in store.get_steps(run_id)
            if s.state == "succeeded"
        }
    wait_for("the twenty runs to end", all_final(store_url, run_ids))
    assert workers.stop(survivor) == 0
    done = records(store_url, run_ids)
    assert [r.status for r in done] == ["succeeded"] * 20
    ran = executions(ledger)
    assert set(ran) == {f"{n}:{s}" for n in range(20) for s in "abc"}
    assert {step: ran[step] for step in finished} == dict.fromkeys(finished, 1)
    assert max(ran.values()) <= 2  # a step running at the kill runs again, once
    assert sum(r.claims for r in done) > 20  # the killed worker's runs were taken over
    with open_store(store_url) as store:
        for n, run_id in enumerate(run_ids):
            outputs = {s.step_id: s.output_json for s in store.get_steps(run_id)}
            assert outputs == {"a": str(n), "b": str(n + 1), "c": str((n + 1) * 2)}


def test_sigterm_lets_the_run_in_hand_finish_before_the_worker_exits(
    project: Path, ledger: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "runs.db")
    gate = tmp_path / "gate"
    [run_id, waiting] = queue_runs(project, url, ledger, 2, gate=str(gate))
    workers = Workers(project, url)
    try:
        proc = workers.start()
        wait_for("step b to start", lambda: executions(ledger)["0:b"] == 1)
        proc.send_signal(signal.SIGTERM)
        wait_for("the worker to hear it", lambda: "stopping" in workers.log(0))
        gate.touch()
        assert proc.wait(PATIENCE) == 0
    finally:
        workers.close()
    first, second = records(url, [run_id, waiting])
    assert (first.status, first.claims, first.lease_until) == ("succeeded", 1, None)
    assert (second.status, second.claims) == ("queued", 0)  # never claimed after SIGTERM
    assert executions(ledger) == Counter({"0:a": 1, "0:b": 1, "0:c": 1})


# -- claims -------------------------------------------------------------------------------------

CLAIMER = textwrap.dedent(
    """
    import sys, time
    from pardag.store import open_store
    url, name, ready = sys.argv[1:]
    with open_store(url) as store:
        open(ready + "." + name, "w").close()
        while not __import__("os").path.exists(ready):
            time.sleep(0.005)
        while (run := store.claim(name, 60.0, time.time())) is not None:
            print(run.run_id, flush=True)
    """
)


def test_concurrent_claims_from_many_processes_take_each_run_once(
    store_url: str, tmp_path: Path
) -> None:
    with open_store(store_url) as store:
        for n in range(60):
            store.enqueue(
                RunRecord(f"q{n:03d}", "wf", "queued", time.time() + n, org=f"org{n % 4}")
            )
    ready, count = str(tmp_path / "go"), 5
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, store_url, f"c{n}", ready],
            env=env,
            stdout=subprocess.PIPE,
        )
        for n in range(count)
    ]
    wait_for("the claimers", lambda: all(Path(f"{ready}.c{n}").exists() for n in range(count)))
    Path(ready).touch()  # all at once
    claimed = Counter(line for p in procs for line in p.communicate(timeout=PATIENCE)[0].split())
    assert all(p.returncode == 0 for p in procs)
    assert sorted(claimed) == [f"q{n:03d}".encode() for n in range(60)]
    assert set(claimed.values()) == {1}


# -- a worker in this process ---------------------------------------------------------------------


def test_one_worker_serves_organisations_in_turn(
    project: Path, ledger: Path, tmp_path: Path
) -> None:
    url = str(tmp_path / "runs.db")
    wf = pardag.load(project / "flow.yaml")
    queued = [
        submit(wf, store=url, params={"n": n, "ledger": str(ledger)}, org=org)
        for n, org in enumerate(["big", "big", "big", "small"])
    ]
    with open_store(url) as store:
        Worker(store, lease=5, poll=0.05, say=lambda _: None).serve(until_idle=True)
    order = sorted(records(url, queued), key=lambda r: r.claimed_at or 0)
    assert [r.run_id for r in order] == [queued[0], queued[3], queued[1], queued[2]]
    assert [r.org for r in order] == ["big", "small", "big", "big"]


def test_a_run_the_worker_cannot_rebuild_fails_saying_why(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    gone = RunRecord("q-gone", "wf", "queued", time.time(), source="no_such_module_q:wf")
    said: list[str] = []
    with open_store(url) as store:
        store.enqueue(gone)  # a workflow built in Python whose module is not here
        Worker(store, lease=5, poll=0.05, say=said.append).serve(until_idle=True)
    [done] = records(url, ["q-gone"])
    assert done.status == "failed" and done.lease_until is None and done.finished_at
    assert done.error is not None and "cannot import its workflow 'no_such_module_q:wf'" in (
        done.error
    )
    assert any("run q-gone failed: worker" in line for line in said)


# -- the command line ---------------------------------------------------------------------------


def test_run_with_queue_prints_the_id_and_leaves_the_run_to_a_worker(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ledger: Path
) -> None:
    url = str(tmp_path / "runs.db")
    flow = str(project / "flow.yaml")
    queue = ["run", flow, "--queue", "--org", "acme", "--set", "n=7", "--set", f"ledger={ledger}"]
    code = main([*queue, "--store", url])
    assert code == 0
    run_id = capsys.readouterr().out.strip()
    [record] = records(url, [run_id])
    assert (record.status, record.org, record.claims) == ("queued", "acme", 0)
    assert '"n": 7' in record.params_json
    assert main(["resume", run_id, "--store", url]) == 2
    assert "is queued: a worker will run it" in capsys.readouterr().err
    assert not ledger.exists()  # nothing ran
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(REPO)])}
    command = [sys.executable, "-m", "pardag", "worker", "--store", url, "--until-idle"]
    worker = subprocess.run(command, cwd=project, env=env, capture_output=True, timeout=PATIENCE)
    assert worker.returncode == 0, worker.stderr
    [record] = records(url, [run_id])
    assert (record.status, record.claims) == ("succeeded", 1)
    assert executions(ledger) == Counter({"7:a": 1, "7:b": 1, "7:c": 1})


def test_worker_flags_are_checked_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(tmp_path / "runs.db")
    assert main(["worker", "--store", url, "--lease", "0s"]) == 2
    assert "--lease 0s: give a duration above 0" in capsys.readouterr().err
    assert main(["worker", "--store", url, "--max-runs", "0"]) == 2
    assert "max_runs=0" in capsys.readouterr().err


def test_a_queued_run_can_be_cancelled_and_no_worker_claims_it(
    project: Path, tmp_path: Path, ledger: Path
) -> None:
    url = str(tmp_path / "runs.db")
    [run_id] = queue_runs(project, url, ledger, 1)
    assert main(["cancel", run_id, "--store", url]) == 0
    with open_store(url) as store:
        assert store.claim("w", 5.0, time.time()) is None
    [record] = records(url, [run_id])
    assert record.status == "cancelled" and record.claims == 0


def test_a_run_a_worker_holds_is_not_resumed_but_its_worker_is_asked_to_cancel_it(
    project: Path, tmp_path: Path, ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(tmp_path / "runs.db")
    [run_id] = queue_runs(project, url, ledger, 1)
    with open_store(url) as store:
        assert store.claim("far-away:1", 60.0, time.time()) is not None
    capsys.readouterr()
    assert main(["resume", run_id, "--store", url]) == 2
    assert "is held by worker far-away:1" in capsys.readouterr().err
    assert main(["cancel", run_id, "--store", url]) == 0
    assert f"asked worker far-away:1 to cancel run {run_id}" in capsys.readouterr().err
    [record] = records(url, [run_id])
    assert record.status == "running" and not ledger.exists()  # the worker stops it
    assert record.cancel_requested == "`pardag cancel`"
    with open_store(url) as store:
        assert store.cancel_requests("far-away:1") == {run_id: "`pardag cancel`"}


def test_a_worker_that_lost_its_lease_records_nothing_more_of_the_run(
    project: Path, tmp_path: Path, ledger: Path
) -> None:
    """A worker stalled past its lease (here: the lease made to expire under it) finds at its
    next renewal that another worker took the run over; the step it was running then ends,
    and nothing of that is recorded, nor does the next step start there."""
    url, gate = str(tmp_path / "runs.db"), tmp_path / "gate"
    [run_id] = queue_runs(project, url, ledger, 1, gate=str(gate))
    said: list[str] = []
    with open_store(url) as store:
        stalled = Worker(store, lease=0.3, poll=0.05, say=said.append)
        serving = threading.Thread(target=stalled.serve)
        serving.start()
        try:
            wait_for("step b to start", lambda: executions(ledger)["0:b"] == 1)
            expire(url, run_id)
            assert store.claim("thief", 600.0, time.time()) is not None
            wait_for("the lost lease", lambda: any("lost its lease" in line for line in said))
            gate.touch()
            wait_for("the run to stop here", lambda: not stalled.running)
        finally:
            stalled.stop()
            serving.join(PATIENCE)
        [held] = records(url, [run_id])
        assert (held.status, held.worker, held.claims) == ("running", "thief", 2)
        b = [s for s in store.get_steps(run_id) if s.step_id == "b"]
        assert [(s.attempt, s.state) for s in b] == [(1, "running")]  # its end not recorded
        assert executions(ledger) == Counter({"0:a": 1, "0:b": 1})  # c never started there
        expire(url, run_id)  # the thief dies too: a worker takes the run over and ends it
        Worker(store, lease=5, poll=0.05, say=said.append).serve(until_idle=True)
    [done] = records(url, [run_id])
    assert (done.status, done.claims) == ("succeeded", 3)
    assert executions(ledger) == Counter({"0:a": 1, "0:b": 2, "0:c": 1})


def expire(url: str, run_id: str) -> None:
    """Make the run's lease run out now, as if its worker had stopped renewing it."""
    conn = sqlite3.connect(url, isolation_level=None)
    try:
        conn.execute("UPDATE runs SET lease_until = 0 WHERE run_id = ?", (run_id,))
    finally:
        conn.close()


def test_a_run_that_pauses_in_a_worker_is_released_and_answered_as_any_other(
    tmp_path: Path,
) -> None:
    url = str(tmp_path / "runs.db")
    flow = tmp_path / "approve.yaml"
    flow.write_text(
        "name: approve\n"
        "steps:\n"
        "  build: {kind: shell, command: echo built}\n"
        "  review: {kind: approval, depends_on: build, prompt: Ship it?}\n"
        "  ship: {kind: shell, depends_on: review, command: echo shipped}\n"
    )
    run_id = submit(pardag.load(flow), store=url)
    with open_store(url) as store:
        Worker(store, lease=5, poll=0.05, say=lambda _: None).serve(until_idle=True)
        [paused] = records(url, [run_id])
        assert (paused.status, paused.lease_until) == ("paused", None)
        assert store.claim("w", 5.0, time.time()) is None  # a paused run waits for its answer
        result = pardag.approve(run_id, "review", True, store=store)
    assert result.status == "succeeded"
    assert result.outputs["ship"]["stdout"].strip() == "shipped"
