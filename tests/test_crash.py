"""Crash tests: a real process running a durable workflow is SIGKILLed, then the run resumed.

The workflows (tests/crash_flows.py) append each step's id to an external ledger, one line per
execution, so executions are counted without trusting the store under test. What a broken
journal or resume would get wrong, and these tests catch:
- a step whose success was committed runs again, or comes back with another output;
- a step running at the kill is lost, or runs more than once per process;
- a step starts before its dependencies' ends are committed (in the ledger, or recorded
  running, while the store does not hold its dependencies' successes);
- several processes writing one SQLite file surface "database is locked".
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import RunStatus
from pardag.store import open_store
from pardag.store.base import StepRecord
from tests import crash_flows
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)

REPO = Path(__file__).resolve().parents[1]
RUN_FLOW = "import sys, tests.crash_flows as f; sys.exit(f.main(sys.argv[1:]))"
CHOSEN_OUTPUTS = {"a": 1, "side": 1, "victim": 2, "after": 4}
"""Every step returns the sum of its inputs plus one: a and side 1, victim a+1, after 2+1+1."""


# -- processes ----------------------------------------------------------------------------------


def flow_env(url: str, ledger: Path, **extra: str) -> dict[str, str]:
    """The environment of a run's process: its store and ledger, and nothing else of pardag's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARDAG_", "CRASH_"))}
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    env.update(PARDAG_STORE=url, CRASH_LEDGER=str(ledger), PYTHONPATH=path, **extra)
    return env


def spawn(args: list[str], env: dict[str, str], logs: str) -> subprocess.Popen[bytes]:
    """Start ``args`` with stdout and stderr in files ``logs``.out and ``logs``.err (a pipe
    nobody reads while we wait for the ledger could block the process)."""
    with open(f"{logs}.out", "wb") as out, open(f"{logs}.err", "wb") as err:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err)


def start(name: str, url: str, ledger: Path, **extra: str) -> subprocess.Popen[bytes]:
    """Run workflow ``name`` of tests/crash_flows.py in a new process (output beside the
    ledger: ``ledger.name.out``, ``.err``)."""
    command = [sys.executable, "-c", RUN_FLOW, name]
    return spawn(command, flow_env(url, ledger, **extra), f"{ledger}.{name}")


def run_until_it_kills_itself(name: str, url: str, ledger: Path) -> None:
    """Run ``name``, one of whose steps SIGKILLs the process."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_FLOW, name],
        cwd=REPO,
        env=flow_env(url, ledger),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def kill_when_ledger_reaches(
    proc: subprocess.Popen[bytes], ledger: Path, lines: int, delay: float
) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after the ledger holds ``lines`` lines: a moment in
    the middle of the run, chosen by the caller's seed."""
    deadline = time.monotonic() + 60
    while ledger_lines(ledger) < lines:
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the kill"
        assert time.monotonic() < deadline, f"the ledger never reached {lines} lines"
        time.sleep(0.001)
    time.sleep(delay)
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before the kill landed"


def resume_cli(run_id: str, url: str, ledger: Path) -> subprocess.Popen[bytes]:
    """``pardag resume RUN --store URL`` in a new process."""
    command = [sys.executable, "-m", "pardag", "resume", run_id, "--store", url, "--json"]
    return spawn(command, flow_env(url, ledger), f"{ledger}.resume")


def resume_cli_to_the_end(run_id: str, url: str, ledger: Path) -> dict[str, Any]:
    """Resume through the command line; its ``--json`` result."""
    done = subprocess.run(
        [sys.executable, "-m", "pardag", "resume", run_id, "--store", url, "--json"],
        cwd=REPO,
        env=flow_env(url, ledger),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == f"run {run_id}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def resume_here(
    run_id: str, url: str, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> pardag.RunResult:
    """``pardag.resume`` in the test process, its steps writing to the same ledger."""
    monkeypatch.setenv("CRASH_LEDGER", str(ledger))
    monkeypatch.delenv("PARDAG_STORE", raising=False)
    return pardag.resume(run_id, store=url)


# -- the ledger and the store -------------------------------------------------------------------


def ledger_lines(ledger: Path) -> int:
    try:
        return ledger.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def executions(ledger: Path) -> Counter[str]:
    """How many times each step ran, in every process so far."""
    return Counter(ledger.read_text().split()) if ledger.exists() else Counter()


def the_run(url: str, workflow: str) -> str:
    with open_store(url, create=False) as store:
        (run,) = store.list_runs(workflow=workflow)
    return run.run_id


@dataclass
class Snapshot:
    """What a killed process left: the ledger, and each step's latest committed attempt."""

    ran: Counter[str]
    latest: dict[str, StepRecord]

    def state(self, step: str) -> str | None:
        record = self.latest.get(step)
        return record.state if record is not None else None

    def succeeded(self) -> set[str]:
        return {sid for sid, rec in self.latest.items() if rec.state == "succeeded"}


def look(url: str, run_id: str, ledger: Path) -> Snapshot:
    """Read the ledger and the store after a kill, before anything resumes the run."""
    with open_store(url, create=False) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "running", run
        latest: dict[str, StepRecord] = {}
        for rec in store.get_steps(run_id):  # by step, then attempt: the last one wins
            latest[rec.step_id] = rec
    return Snapshot(executions(ledger), latest)


def assert_finished(url: str, run_id: str, expected: dict[str, Any]) -> None:
    """The store holds the run as succeeded, every step's output, and its events in order."""
    with open_store(url, create=False) as store:
        run = store.get_run(run_id)
        steps = store.get_steps(run_id)
        seqs = [e.seq for e in store.get_events(run_id)]
    assert run is not None and run.status == "succeeded" and run.error is None
    latest = {rec.step_id: rec for rec in steps}
    assert {sid: rec.state for sid, rec in latest.items()} == dict.fromkeys(expected, "succeeded")
    outputs = {sid: json.loads(rec.output_json or "null") for sid, rec in latest.items()}
    assert outputs == expected
    assert seqs == list(range(1, len(seqs) + 1))  # numbered on across the processes


def ran_after_resume(before: Snapshot, steps: Any) -> Counter[str]:
    """What the ledger must hold once the run is resumed: each step once more than at the kill,
    except those whose success was committed (at-least-once, and no more)."""
    return before.ran + Counter(dict.fromkeys(set(steps) - before.succeeded(), 1))


# -- kills at chosen points ---------------------------------------------------------------------


@pytest.mark.parametrize("flow", ["killed_on_start", "killed_once_recorded"])
def test_a_step_killed_as_it_starts_runs_again(
    flow: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The victim's first act is SIGKILL: with ``killed_on_start`` its running record may or
    may not be committed by then; ``killed_once_recorded`` waits until it is. Either way the
    resume runs it (once), and keeps what had finished."""
    url, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    run_until_it_kills_itself(flow, url, ledger)
    run_id = the_run(url, flow)
    before = look(url, run_id, ledger)
    check_kill(getattr(crash_flows, flow), before, Counter(), CHOSEN_OUTPUTS)
    assert before.ran["a"] == 1 and before.state("a") == "succeeded"
    assert "victim" not in before.ran and "after" not in before.latest
    if flow == "killed_once_recorded":
        assert before.state("victim") == "running"
    else:
        assert before.state("victim") in (None, "running")

    result = resume_here(run_id, url, ledger, monkeypatch)

    assert result.status is RunStatus.SUCCEEDED and result.run_id == run_id
    assert dict(result.outputs) == CHOSEN_OUTPUTS
    assert executions(ledger) == ran_after_resume(before, CHOSEN_OUTPUTS)
    assert executions(ledger)["victim"] == 1
    assert_finished(url, run_id, CHOSEN_OUTPUTS)


def test_a_run_killed_before_its_first_commit_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed as the run starts (a listener hears ``run_started`` before the journal does):
    the store holds the run's record and nothing else; resuming runs every step once."""
    url, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    run_until_it_kills_itself("killed_at_run_start", url, ledger)
    run_id = the_run(url, "killed_at_run_start")
    before = look(url, run_id, ledger)
    assert before.latest == {} and not before.ran

    result = resume_here(run_id, url, ledger, monkeypatch)

    assert result.status is RunStatus.SUCCEEDED and result.run_id == run_id
    assert dict(result.outputs) == CHOSEN_OUTPUTS
    assert executions(ledger) == Counter(dict.fromkeys(CHOSEN_OUTPUTS, 1))
    assert_finished(url, run_id, CHOSEN_OUTPUTS)


def test_a_run_killed_after_its_last_commit_finishes_without_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed as the run ends (``run_finished``, before the journal records it): every step's
    success is in the store, the run's end is not; resuming runs nothing and ends the run."""
    url, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    run_until_it_kills_itself("killed_at_run_end", url, ledger)
    run_id = the_run(url, "killed_at_run_end")
    before = look(url, run_id, ledger)
    check_kill(crash_flows.killed_at_run_end, before, Counter(), CHOSEN_OUTPUTS)
    assert before.succeeded() == set(CHOSEN_OUTPUTS)

    result = resume_here(run_id, url, ledger, monkeypatch)

    assert result.status is RunStatus.SUCCEEDED and dict(result.outputs) == CHOSEN_OUTPUTS
    assert executions(ledger) == before.ran == Counter(dict.fromkeys(CHOSEN_OUTPUTS, 1))
    assert_finished(url, run_id, CHOSEN_OUTPUTS)


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_step_killed_mid_step_runs_again(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The victim did its work (its ledger line) and died before returning: it was running,
    so the resume runs it a second time; nothing else runs twice."""
    url, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    run_until_it_kills_itself("killed_mid_step", url, ledger)
    run_id = the_run(url, "killed_mid_step")
    before = look(url, run_id, ledger)
    check_kill(crash_flows.killed_mid_step, before, Counter(), CHOSEN_OUTPUTS)
    assert before.ran["victim"] == 1 and before.state("victim") in (None, "running")
    assert before.state("a") == "succeeded"

    if how == "api":
        outputs = dict(resume_here(run_id, url, ledger, monkeypatch).outputs)
    else:
        outputs = resume_cli_to_the_end(run_id, url, ledger)["outputs"]

    assert outputs == CHOSEN_OUTPUTS
    assert executions(ledger) == ran_after_resume(before, CHOSEN_OUTPUTS)
    assert executions(ledger)["victim"] == 2 and executions(ledger)["a"] == 1
    assert_finished(url, run_id, CHOSEN_OUTPUTS)


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_success_committed_just_before_the_kill_is_kept(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``a``'s only dependent kills the process first thing: ``a``'s end (a large output, so
    a slow commit) must be committed by then, since dependents start only after; after the
    resume ``a`` has still run once and its dependent gets its output from the store."""
    url, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    expected = {**CHOSEN_OUTPUTS, "a": [1] + [0] * crash_flows.PADDING}
    run_until_it_kills_itself("killed_after_commit", url, ledger)
    run_id = the_run(url, "killed_after_commit")
    before = look(url, run_id, ledger)
    check_kill(crash_flows.killed_after_commit, before, Counter(), expected)
    assert before.ran["a"] == 1 and "victim" not in before.ran
    assert before.state("a") == "succeeded"
    assert json.loads(before.latest["a"].output_json or "null") == expected["a"]
    assert before.state("victim") in (None, "running")

    if how == "api":
        outputs = dict(resume_here(run_id, url, ledger, monkeypatch).outputs)
    else:
        outputs = resume_cli_to_the_end(run_id, url, ledger)["outputs"]

    assert outputs == expected
    assert executions(ledger) == ran_after_resume(before, expected)
    assert executions(ledger)["a"] == 1 and executions(ledger)["victim"] == 1
    assert_finished(url, run_id, expected)


# -- kills at random moments ----------------------------------------------------------------------


def in_memory_outputs(wf: pardag.Workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The outputs of a plain run of ``wf`` (no store, no kill): what a resumed run must give."""
    ledger = tmp_path / f"{wf.name}.memory"
    monkeypatch.setenv("CRASH_LEDGER", str(ledger))
    monkeypatch.delenv("PARDAG_STORE", raising=False)
    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED
    assert executions(ledger) == Counter(dict.fromkeys(wf.steps, 1))
    return dict(result.outputs)


def check_kill(wf: pardag.Workflow, snap: Snapshot, earlier: Counter[str], expected: Any) -> None:
    """What must hold of the store and the ledger at the moment of a kill."""
    deps = {sid: step.depends_on for sid, step in wf.steps.items()}
    done = snap.succeeded()
    assert done <= set(snap.ran), "a success is committed for a step that never ran"
    for sid in done:
        assert json.loads(snap.latest[sid].output_json or "null") == expected[sid], sid
    for sid in set(snap.ran) | set(snap.latest):
        missing = [d for d in deps[sid] if d not in done]
        assert not missing, f"{sid} ran or was recorded before {missing} had committed ends"
    this_process = snap.ran - earlier
    assert max(this_process.values(), default=0) <= 1, "a step ran twice in one process"


def crash_and_resume(
    name: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, how: str
) -> None:
    """Run the 200-step DAG ``name``, kill it at a moment chosen by ``seed``, then resume it
    (``how``: ``api``; ``cli``; ``killed-cli``, a resume killed in its turn, then ``api``)
    and check every step ran as the guarantees say."""
    wf = getattr(crash_flows, name)
    expected = in_memory_outputs(wf, tmp_path, monkeypatch)
    rng = random.Random(seed)
    ledger = tmp_path / "ledger"
    kill_when_ledger_reaches(
        start(name, url, ledger), ledger, rng.randint(10, 90), rng.random() / 100
    )
    run_id = the_run(url, name)
    snaps = [look(url, run_id, ledger)]
    check_kill(wf, snaps[0], Counter(), expected)

    if how == "killed-cli":  # the resume dies too, somewhere in the first half of what is left
        left = len(wf.steps) - len(snaps[0].succeeded())
        lines = ledger_lines(ledger) + rng.randint(1, max(1, left // 2))
        kill_when_ledger_reaches(resume_cli(run_id, url, ledger), ledger, lines, rng.random() / 100)
        snaps.append(look(url, run_id, ledger))
        check_kill(wf, snaps[1], snaps[0].ran, expected)
    if how == "cli":
        outputs = resume_cli_to_the_end(run_id, url, ledger)["outputs"]
    else:
        outputs = dict(resume_here(run_id, url, ledger, monkeypatch).outputs)

    assert outputs == expected
    assert_finished(url, run_id, expected)
    ran = executions(ledger)
    assert set(ran) == set(wf.steps), "a step was lost"
    committed = snaps[-1].succeeded()
    assert ran - snaps[-1].ran == Counter(dict.fromkeys(set(wf.steps) - committed, 1)), (
        "the last resume must run every step whose success was not committed, once each"
    )
    assert all(ran[sid] == 1 for sid in snaps[0].succeeded()), "a committed step ran again"
    for snap in snaps:
        assert all(ran[sid] == snap.ran[sid] for sid in snap.succeeded())
    for sid in wf.steps:  # at most once more than the kills that caught it running
        cut_short = [s for s in snaps if sid not in s.succeeded() and _started(s, sid)]
        assert ran[sid] <= 1 + len(cut_short), sid
        if len(snaps) == 1:
            assert ran[sid] <= 2, sid


def _started(snap: Snapshot, sid: str) -> bool:
    """Running at the kill: in the ledger, or recorded as running."""
    return sid in snap.ran or snap.state(sid) == "running"


@pytest.mark.parametrize(
    ("seed", "how"), [(11, "api"), (23, "cli"), (37, "killed-cli")], ids=["api", "cli", "twice"]
)
def test_a_kill_at_a_random_moment_loses_nothing_and_repeats_nothing_finished(
    seed: int, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200-step DAG (4 steps at a time on threads) killed where ``seed`` says, resumed from
    Python, from the command line, or from a command line killed in its turn."""
    crash_and_resume(f"dag_{seed}", str(tmp_path / "runs.db"), tmp_path, monkeypatch, seed, how)


def test_a_run_on_postgresql_survives_a_kill(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on PostgreSQL (a schema of its own): killed, resumed and killed, resumed."""
    crash_and_resume("dag_23", postgres_url, tmp_path, monkeypatch, 5, "killed-cli")


# -- several processes on one file ------------------------------------------------------------


def test_four_processes_write_one_sqlite_file_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four runs of 100 steps start together (a barrier after their imports) on one new file:
    all succeed, none sees "database is locked", and the store holds all four, step by step."""
    expected = in_memory_outputs(crash_flows.quick_100, tmp_path, monkeypatch)
    url = str(tmp_path / "runs.db")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    ledgers = [tmp_path / f"ledger{k}" for k in range(4)]
    procs = [start("quick_100", url, ledger, CRASH_BARRIER=f"{barrier}:4") for ledger in ledgers]
    codes = [proc.wait(timeout=60) for proc in procs]
    errors = [p.read_text() for p in sorted(tmp_path.glob("ledger*.err"))]
    assert codes == [0, 0, 0, 0], errors
    assert not any("locked" in e or "Traceback" in e for e in errors), errors
    run_ids = {p.read_text().strip() for p in tmp_path.glob("ledger*.out")}
    assert len(run_ids) == 4
    with open_store(url, create=False) as store:
        runs = store.list_runs(workflow="quick_100")
    assert {r.run_id for r in runs} == run_ids
    for run_id in run_ids:
        assert_finished(url, run_id, expected)
    for ledger in ledgers:
        assert executions(ledger) == Counter(dict.fromkeys(crash_flows.quick_100.steps, 1))


def test_a_run_killed_beside_others_on_one_file_blocks_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One of four processes sharing a SQLite file is SIGKILLed mid-run (maybe inside a write
    transaction): the other three finish without "database is locked", and the killed run
    resumes to the same outputs as a run that was never killed."""
    # dag_23_long is dag_23 with longer pauses (the same seed and size: the same graph, so the
    # same outputs); the plain run of dag_23 gives them in a fifth of the time
    assert _graph(crash_flows.dag_23_long) == _graph(crash_flows.dag_23)
    expected = {
        name: in_memory_outputs(getattr(crash_flows, oracle), tmp_path, monkeypatch)
        for name, oracle in (("dag_11", "dag_11"), ("dag_23_long", "dag_23"))
    }
    url = str(tmp_path / "runs.db")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    gate = {"CRASH_BARRIER": f"{barrier}:4"}
    victim_ledger = tmp_path / "victim"
    victim = start("dag_11", url, victim_ledger, **gate)
    others = [start("dag_23_long", url, tmp_path / f"ledger{k}", **gate) for k in range(3)]
    kill_when_ledger_reaches(victim, victim_ledger, 40, 0.003)
    progress = [ledger_lines(tmp_path / f"ledger{k}") for k in range(3)]
    assert any(n < 200 for n in progress), "the others had finished: nothing ran beside the kill"
    codes = [proc.wait(timeout=60) for proc in others]
    errors = [p.read_text() for p in sorted(tmp_path.glob("ledger*.err"))]
    assert codes == [0, 0, 0], errors
    assert not any("locked" in e or "Traceback" in e for e in errors), errors
    run_ids = {p.read_text().strip() for p in tmp_path.glob("ledger*.out")}
    for run_id in run_ids:
        assert_finished(url, run_id, expected["dag_23_long"])

    run_id = the_run(url, "dag_11")
    before = look(url, run_id, victim_ledger)
    check_kill(crash_flows.dag_11, before, Counter(), expected["dag_11"])
    result = resume_here(run_id, url, victim_ledger, monkeypatch)
    assert dict(result.outputs) == expected["dag_11"]
    assert_finished(url, run_id, expected["dag_11"])
    assert executions(victim_ledger) == ran_after_resume(before, crash_flows.dag_11.steps)


def _graph(wf: pardag.Workflow) -> dict[str, list[str]]:
    """Each step's dependencies, in order."""
    return {sid: list(step.depends_on) for sid, step in wf.steps.items()}
