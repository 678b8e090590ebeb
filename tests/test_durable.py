"""Runs recorded in the run store (SQLite here; the store's own suite covers PostgreSQL).

What a broken journal would get wrong: a step must be recorded running before it runs, its end
must be committed before a dependent starts, every event lands in order, a crash loses
nothing that was committed, and resuming runs only what had not finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import ArgumentError, RunStatus
from pardag.store import open_store


@pytest.fixture
def url(tmp_path: Path) -> str:
    return str(tmp_path / "runs.db")


def test_a_run_is_recorded_with_its_steps_outputs_and_events(url: str) -> None:
    wf = pardag.Workflow("recorded")
    wf.add("a", lambda: {"n": 1})
    wf.add("b", lambda a: a["n"] + 1, depends_on=["a"])
    wf.add("c", lambda: 3, when="params.go", depends_on=[])
    result = wf.run(store=url, params={"go": False})
    assert result.status is RunStatus.SUCCEEDED
    with open_store(url) as store:
        run = store.get_run(result.run_id)
        assert run is not None and run.status == "succeeded" and run.workflow == "recorded"
        assert json.loads(run.params_json) == {"go": False}
        steps = {(s.step_id, s.attempt): s for s in store.get_steps(result.run_id)}
        assert json.loads(steps[("a", 1)].output_json or "") == {"n": 1}
        assert steps[("b", 1)].state == "succeeded" and steps[("b", 1)].output_json == "2"
        assert steps[("c", 1)].state == "skipped" and steps[("c", 1)].reason == "condition false"
        events = store.get_events(result.run_id)
        kinds = [e.kind for e in events]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert kinds.index("step_succeeded") < len(kinds) - 1


def test_a_dependency_is_committed_before_its_dependent_starts(url: str) -> None:
    seen: dict[str, object] = {}

    def look(name: str) -> None:
        with open_store(url) as other:  # a second connection: only committed rows are visible
            (run,) = other.list_runs(workflow="ahead")
            seen[name] = {(s.step_id, s.state) for s in other.get_steps(run.run_id)}

    wf = pardag.Workflow("ahead")
    wf.add("a", lambda: look("a"))
    wf.add("b", lambda a: look("b"), depends_on=["a"])
    assert wf.run(store=url).status is RunStatus.SUCCEEDED
    assert ("a", "succeeded") not in seen["a"]  # type: ignore[operator]
    assert ("a", "succeeded") in seen["b"]  # type: ignore[operator]


def test_retried_attempts_are_each_recorded(url: str) -> None:
    tries = iter([ValueError("first"), None])

    def flaky() -> str:
        print("trying")
        error = next(tries)
        if error:
            raise error
        return "ok"

    wf = pardag.Workflow("retried")
    wf.add("f", flaky, retry=pardag.RetryPolicy(retries=1, delay=0.001))
    result = wf.run(store=url)
    with open_store(url) as store:
        attempts = [(s.attempt, s.state) for s in store.get_steps(result.run_id)]
        first = next(s for s in store.get_steps(result.run_id) if s.attempt == 1)
        logs = [(p.attempt, p.text) for p in store.get_logs(result.run_id, "f")]
    assert attempts == [(1, "retrying"), (2, "succeeded")]
    assert "first" in (first.error or "") and "ValueError" in (first.traceback or "")
    assert logs == [(1, "trying\n"), (2, "trying\n")]  # each attempt's log its own


def test_an_output_json_cannot_hold_is_kept_in_memory_with_a_warning(url: str) -> None:
    opaque = object()
    wf = pardag.Workflow("opaque")
    wf.add("obj", lambda: opaque)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = wf.run(store=url)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["obj"] is opaque  # kept in memory for the run
    assert any("is not JSON" in str(w.message) for w in caught)
    with open_store(url) as store:
        (step,) = store.get_steps(result.run_id)
    assert step.output_stored is False and step.output_json is None


def test_an_encoder_makes_such_outputs_storable(url: str) -> None:
    wf = pardag.Workflow("encoded")
    wf.add("when", lambda: {1, 2})
    result = wf.run(store=url, encoder=sorted)
    with open_store(url) as store:
        (step,) = store.get_steps(result.run_id)
    assert json.loads(step.output_json or "") == [1, 2]


def test_without_a_store_nothing_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARDAG_STORE", raising=False)
    wf = pardag.Workflow("memory")
    wf.add("a", lambda: 1)
    assert wf.run().status is RunStatus.SUCCEEDED
    assert not (tmp_path / ".pardag").exists()


def test_pardag_store_in_the_environment_records_runs(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARDAG_STORE", url)
    wf = pardag.Workflow("from-env")
    wf.add("a", lambda: 1)
    result = wf.run()
    with open_store(url) as store:
        assert store.get_run(result.run_id) is not None


# -- crash and resume ------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, signal
    from pathlib import Path

    import pardag

    LEDGER = Path(os.environ["LEDGER"])

    def mark(name):
        with LEDGER.open("a") as f:
            f.write(name + "\\n")

    def wait_until_recorded(step):
        import time
        from pardag.store import open_store

        for _ in range(500):
            with open_store(os.environ["STORE"]) as store:
                (run,) = store.list_runs(workflow="crashy")
                if any(s.step_id == step for s in store.get_steps(run.run_id)):
                    return
            time.sleep(0.01)

    wf = pardag.Workflow("crashy")

    @wf.step
    def a():
        mark("a")
        return 1

    @wf.step
    def side():
        mark("side")
        return "s"

    @wf.step
    def b(a):
        mark("b")
        flag = Path(str(LEDGER) + ".crashed")
        if not flag.exists():
            flag.touch()
            wait_until_recorded("b")  # so that the cut-short attempt is in the store
            os.kill(os.getpid(), signal.SIGKILL)
        return a + 1

    @wf.step
    def c(b, side):
        mark("c")
        return b * 10

    if __name__ == "__main__":
        wf.run(store=os.environ["STORE"], max_concurrency=1)
    """
)


def test_kill_9_then_resume_runs_only_what_had_not_finished(tmp_path: Path, url: str) -> None:
    script = tmp_path / "crashy.py"
    script.write_text(SCRIPT)
    ledger = tmp_path / "ledger"
    env = {**os.environ, "LEDGER": str(ledger), "STORE": url}
    done = subprocess.run([sys.executable, str(script)], env=env, timeout=60)
    assert done.returncode == -signal.SIGKILL
    with open_store(url) as store:
        (run,) = store.list_runs(workflow="crashy")
    assert run.status == "running"
    os.environ["LEDGER"] = str(ledger)
    try:
        result = pardag.resume(run.run_id, store=url)
    finally:
        del os.environ["LEDGER"]
    assert result.status is RunStatus.SUCCEEDED
    assert result.run_id == run.run_id
    assert result.outputs["c"] == 20
    ran = ledger.read_text().split()
    assert ran.count("a") == 1 and ran.count("side") == 1  # finished before the kill: kept
    assert ran.count("b") == 2  # running at the kill: at least once, here twice
    assert ran.count("c") == 1
    with open_store(url) as store:
        again = store.get_run(run.run_id)
        events = store.get_events(run.run_id)
        b_attempts = [(s.attempt, s.state) for s in store.get_steps(run.run_id) if s.step_id == "b"]
    assert again is not None and again.status == "succeeded"
    assert b_attempts == [(1, "running"), (2, "succeeded")]  # the cut-short attempt is kept
    assert result.steps["b"].attempts == 2
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_resuming_a_finished_run_says_so(url: str) -> None:
    wf = pardag.Workflow("done")
    wf.add("a", lambda: 1)
    result = wf.run(store=url)
    with pytest.raises(ArgumentError, match="already finished: succeeded"):
        pardag.resume(result.run_id, store=url)


def test_resuming_an_unknown_run_names_the_store(url: str) -> None:
    open_store(url).close()
    with pytest.raises(ArgumentError, match="there is no run 'nope'"):
        pardag.resume("nope", store=url)


def test_shell_steps_get_a_stable_idempotency_key(url: str) -> None:
    wf = pardag.Workflow("keyed")
    wf.add("env", kind="shell", params={"command": 'echo "$PARDAG_IDEMPOTENCY_KEY"'})
    wf.add("tpl", kind="shell", params={"command": "echo {{ idempotency_key }}"})
    result = wf.run(store=url)
    assert result.outputs["env"]["stdout"].strip() == f"{result.run_id}:env"
    assert result.outputs["tpl"]["stdout"].strip() == f"{result.run_id}:tpl"


def test_a_recorded_workflow_orders_its_next_run_by_past_durations(url: str) -> None:
    """Duration history: by step count the chain b1 -> b2 -> b3 is the longer path, so the
    first run starts b1; the store then knows 'slow' takes far longer, so the next run starts
    it first. One slot, so the first step started is the one the order put first."""
    wf = pardag.Workflow("history", max_concurrency=1)
    wf.add("slow", lambda: time.sleep(0.2))
    wf.add("b1", lambda: None)
    wf.add("b2", lambda: None, depends_on=["b1"])
    wf.add("b3", lambda: None, depends_on=["b2"])

    def first_started(**run: Any) -> str:
        recorder = pardag.Recorder()
        wf.run(listeners=[recorder], **run)
        return next(e.step for e in recorder.events if e.kind == "step_started")

    assert first_started() == "b1"  # no store: counts
    assert first_started(store=url) == "b1"  # an empty history: counts
    assert first_started(store=url) == "slow"  # the history
    wf.steps["b1"].estimate = 10.0  # a declared estimate still wins over the history
    assert first_started(store=url) == "b1"
    assert first_started(store=url, mode="levels") == "b1"  # levels: by level, then id


def test_past_durations_stay_out_of_the_way_without_use(url: str) -> None:
    from pardag.runner import past_durations
    from pardag.states import Mode

    wf = pardag.Workflow("quiet")
    wf.add("a", lambda: 1, estimate=2.0)
    wf.add("b", lambda: 1)
    wf.run(store=url)
    with open_store(url) as store:
        graph = wf.compile()
        assert past_durations(None, "quiet", graph, Mode.DYNAMIC) is None
        assert past_durations(store, "quiet", graph, Mode.LEVELS) is None
        assert past_durations(store, "never-ran", graph, Mode.DYNAMIC) is None
        found = past_durations(store, "quiet", graph, Mode.DYNAMIC)
        assert found is not None and found[0] == 2.0 and 0 <= found[1] < 2.0
