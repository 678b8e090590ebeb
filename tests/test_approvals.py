"""Approval steps pause a run durably; an answer from a fresh process continues it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pardag
from pardag import ArgumentError, RunStatus, StepState
from pardag.store import open_store
from tests.cli.support import clean_env, start_run

FLOW = """\
name: release
steps:
  build:
    kind: shell
    command: echo '{"version":"1.4.2"}'
  docs:
    kind: shell
    command: echo docs >> ledger
  review:
    kind: approval
    depends_on: build
    prompt: "Deploy {{ steps.build.output.version }}?"
    schema: {type: object, required: [target], properties: {target: {enum: [staging, prod]}}}
  deploy:
    kind: shell
    depends_on: review
    command: echo deploy {{ steps.review.output.target }} >> ledger && echo '{"ok":true}'
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "flow.yaml").write_text(FLOW)
    return tmp_path


def paused_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The id of a run of ``flow.yaml`` paused at 'review', recorded in the store ``pardag
    run`` uses, made in this process (the first test pauses one through ``pardag run``): the
    tests that answer it from a fresh ``pardag`` process need not start another for it."""
    monkeypatch.chdir(project)  # its shell steps write ./ledger
    store = project / ".pardag" / "runs.db"
    store.parent.mkdir()
    paused = pardag.load(project / "flow.yaml").run(store=str(store))
    assert paused.status is RunStatus.PAUSED
    return paused.run_id


def pardag_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_run_pauses_exits_3_and_an_approval_from_a_fresh_process_finishes_it(
    project: Path,
) -> None:
    done = pardag_cli(project, "run", "flow.yaml", "--json")
    assert done.returncode == 3, done.stderr
    paused = json.loads(done.stdout)
    assert paused["status"] == "paused"
    assert paused["steps"]["review"]["state"] == "paused"
    assert paused["steps"]["docs"]["state"] == "succeeded"  # independent branches ran on
    assert paused["steps"]["deploy"]["state"] == "pending"
    run_id = paused["run_id"]

    refused = pardag_cli(project, "approve", run_id, "review", "--input", '{"target": "moon"}')
    assert refused.returncode == 2
    assert "does not fit step 'review''s schema" in refused.stderr
    assert "'moon' is not one of ['staging', 'prod']" in refused.stderr
    assert "stays paused" in refused.stderr

    done = pardag_cli(project, "approve", run_id[:8], "review", "--input", '{"target": "prod"}')
    assert done.returncode == 0, done.stderr
    assert (project / "ledger").read_text().split("\n")[:2] == ["docs", "deploy prod"]
    with open_store(project / ".pardag" / "runs.db") as store:
        record = store.get_run(run_id)
        steps = {s.step_id: s for s in store.get_steps(run_id)}
    assert record is not None and record.status == "succeeded"
    assert json.loads(steps["review"].output_json or "") == {"target": "prod"}


def test_rejecting_fails_the_step_with_the_reason(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = paused_run(project, monkeypatch)
    done = pardag_cli(project, "reject", run_id, "review", "--reason", "not today", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["steps"]["review"]["state"] == "failed"
    assert "rejected: not today" in result["steps"]["review"]["error"]
    assert result["steps"]["deploy"]["state"] == "cancelled"  # fail_fast: the run stops


def test_answering_what_is_not_waiting_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = paused_run(project, monkeypatch)
    done = pardag_cli(project, "approve", run_id, "build")
    assert done.returncode == 2
    assert f"step 'build' of run {run_id} is not waiting for approval (it is succeeded)" in (
        done.stderr
    )
    done = pardag_cli(project, "approve", "ffffffffff", "review")
    assert done.returncode == 2 and "there is no run 'ffffffffff'" in done.stderr


def test_pause_then_kill_then_approve_from_a_fresh_process(project: Path) -> None:
    waits = "command: echo docs >> ledger; while [ ! -e go ]; do sleep 0.1; done"
    slow = FLOW.replace("command: echo docs >> ledger", waits)  # until the test says go
    proc, _ = start_run(project, "flow.yaml", slow)
    db = project / ".pardag" / "runs.db"
    deadline = time.monotonic() + 30
    paused = False
    while not paused:  # the review step pauses while docs still sleeps
        assert time.monotonic() < deadline, "the review step never paused"
        time.sleep(0.1)
        if db.exists():
            with open_store(db) as store:
                for run in store.list_runs():
                    paused = any(s.state == "paused" for s in store.get_steps(run.run_id))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    with open_store(db) as store:
        (run,) = store.list_runs()
    assert run.status == "running"  # the process died before it could say paused
    (project / "flow.yaml").write_text(FLOW)  # the snapshot (with its wait) is what resumes
    (project / "go").touch()  # docs, run again on resume, ends at once
    done = pardag_cli(project, "approve", run.run_id, "review", "--input", '{"target":"staging"}')
    assert done.returncode == 0, done.stderr
    assert "deploy staging" in (project / "ledger").read_text()


def test_from_python_a_paused_run_is_approved_with_pardag_approve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # its shell steps write ./ledger
    url = str(tmp_path / "runs.db")
    wf = pardag.load(_write(tmp_path, FLOW))
    first = wf.run(store=url)
    assert first.status is RunStatus.PAUSED
    assert first.steps["review"].state is StepState.PAUSED
    with pytest.raises(ArgumentError, match="stays paused"):
        pardag.approve(first.run_id, "review", {"target": 3}, store=url)
    done = pardag.approve(first.run_id, "review", {"target": "staging"}, store=url)
    assert done.status is RunStatus.SUCCEEDED
    assert done.outputs["deploy"] == {"ok": True}
    (listed,) = pardag.runs(store=url)
    assert listed.status == "succeeded"


def _write(directory: Path, text: str) -> Path:
    path = directory / "flow.yaml"
    path.write_text(text)
    return path


def test_cancel_marks_a_paused_run_cancelled_and_answers_are_then_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = paused_run(project, monkeypatch)
    done = pardag_cli(project, "cancel", run_id)
    assert done.returncode == 0, done.stderr
    assert f"run {run_id} (paused) is now cancelled" in done.stderr
    done = pardag_cli(project, "approve", run_id, "review", "--input", '{"target":"prod"}')
    assert done.returncode == 2 and "already finished: cancelled" in done.stderr
    assert pardag_cli(project, "cancel", run_id).returncode == 2


def test_cancel_stops_a_live_run_in_its_own_process(project: Path) -> None:
    proc, run_id = start_run(project, "flow.yaml", FLOW.replace("echo docs >> ledger", "sleep 30"))
    done = pardag_cli(project, "cancel", run_id)
    assert done.returncode == 0, done.stderr
    assert f"asked process {proc.pid} to cancel run {run_id}" in done.stderr
    assert proc.wait(timeout=30) == 130
    with open_store(project / ".pardag" / "runs.db") as store:
        record = store.get_run(run_id)
    assert record is not None and record.status == "cancelled"


def _approval_flow(**params: object) -> pardag.Workflow:
    wf = pardag.Workflow("timed")
    wf.add("ask", kind="approval", params={"prompt": "Ship?", **params})
    wf.add("after", lambda ask: f"got {ask}", depends_on=["ask"])
    return wf


def test_a_wait_that_times_out_while_the_run_lives_applies_on_timeout() -> None:
    wf = _approval_flow(timeout="50ms", on_timeout="approve", default="auto")
    wf.add("busy", lambda: time.sleep(0.5) or "done")  # keeps the run alive past the timeout
    result = wf.run()
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["ask"] == "auto" and result.outputs["after"] == "got auto"


TIMED = """\
name: timed
steps:
  ask:
    kind: approval
    prompt: Ship?
    params: {timeout: 200ms}
  after:
    kind: shell
    depends_on: ask
    command: echo after
"""


def test_a_timeout_that_passed_while_paused_is_applied_by_the_next_resume(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    first = pardag.load(_write(tmp_path, TIMED)).run(store=url)
    assert first.status is RunStatus.PAUSED  # nothing else to do: it does not wait it out
    time.sleep(0.3)  # the wait runs out while nobody runs the run
    resumed = pardag.resume(first.run_id, store=url)
    assert resumed.status is RunStatus.FAILED
    assert "no answer within 200ms (timeout); rejected" in (resumed.steps["ask"].reason or "")
    assert resumed.steps["after"].state is StepState.CANCELLED


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"timeout": "soon"}, "is not a duration"),
        ({"timeout": "1h", "on_timeout": "ignore"}, "on_timeout must be 'reject' or 'approve'"),
        ({"default": 1}, "apply only with the wait's own timeout, under params"),
    ],
)
def test_bad_timeout_settings_fail_validation(params: dict[str, object], message: str) -> None:
    with pytest.raises(pardag.ValidationError, match=message):
        _approval_flow(**params).validate()


def test_a_node_graph_approval_node_pauses_the_same_way(tmp_path: Path) -> None:
    graph = {
        "nodes": [
            {"id": "n", "data": {"value": 2}},
            {"id": "ok", "type": "approval", "data": {"prompt": "Go with {{ steps.n.output }}?"}},
            {"id": "show", "type": "visualization", "data": {"mode": "text"}},
        ],
        "edges": [{"source": "n", "target": "ok"}, {"source": "ok", "target": "show"}],
    }
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph))
    url = str(tmp_path / "runs.db")
    first = pardag.load(path).run(store=url)
    assert first.status is RunStatus.PAUSED and first.steps["ok"].state is StepState.PAUSED
    done = pardag.approve(first.run_id, "ok", "yes please", store=url)
    assert done.outputs["show"] == {"mode": "text", "value": "yes please"}
