"""Retrying a finished run (``pardag.retry``): a new attempt of the same run that runs again
what failed (or the steps asked for, and what depends on them) and reuses what succeeded.

Every step appends its name to an external ledger (one ``O_APPEND`` write), so a test counts
what really ran without trusting the store it checks; step ``b`` fails while a flag file
exists, so a test "fixes" it by deleting the file. SQLite and PostgreSQL both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag import ArgumentError, RunStatus
from pardag.rerun import plan_retry
from pardag.store import RunUpdate, StepRecord, open_store
from pardag.worker import Worker
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)

FLOW = """\
name: retried
execution:
  on_failure: continue
params:
  ledger: ""
  flag: ""
steps:
  a:
    function: rsteps:a
  b:
    function: rsteps:b
    depends_on: a
  c:
    function: rsteps:c
    depends_on: b
  d:
    function: rsteps:d
    depends_on: a
"""

STEPS = """\
import os


def _mark(params, name):
    fd = os.open(params["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\\n".encode())
    finally:
        os.close(fd)


def a(params):
    _mark(params, "a")
    return 1


def b(a, params):
    _mark(params, "b")
    if os.path.exists(params["flag"]):
        raise RuntimeError("b is broken while the flag file exists")
    return a + 1


def c(b, params):
    _mark(params, "c")
    return b * 10


def d(a, params):
    _mark(params, "d")
    return a + 100
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


class Project:
    """The flow and its steps' module in a folder, the ledger and the flag beside them."""

    def __init__(self, folder: Path, url: str) -> None:
        folder.mkdir()
        (folder / "flow.yaml").write_text(FLOW)
        (folder / "rsteps.py").write_text(STEPS)
        self.folder, self.url = folder, url
        self.ledger, self.flag = folder / "ledger.txt", folder / "broken.flag"

    def run(self, broken: bool) -> pardag.RunResult:
        if broken:
            self.flag.touch()
        wf = pardag.load(self.folder / "flow.yaml")
        params = {"ledger": str(self.ledger), "flag": str(self.flag)}
        return wf.run(store=self.url, params=params)

    def ran(self) -> Counter[str]:
        """What ran since the last call, by step (the ledger starts again)."""
        found = Counter(self.ledger.read_text().split()) if self.ledger.exists() else Counter()
        self.ledger.unlink(missing_ok=True)
        return found

    def fix(self) -> None:
        self.flag.unlink()

    def steps(self, run_id: str) -> dict[str, list[tuple[int, str, Any]]]:
        """Each step's attempts: (attempt, state, output)."""
        with open_store(self.url) as store:
            out: dict[str, list[tuple[int, str, Any]]] = {}
            for s in store.get_steps(run_id):
                output = json.loads(s.output_json) if s.output_json is not None else None
                out.setdefault(s.step_id, []).append((s.attempt, s.state, output))
            return out

    def record(self, run_id: str) -> pardag.store.RunRecord:
        with open_store(self.url) as store:
            found = store.get_run(run_id)
        assert found is not None
        return found


@pytest.fixture
def project(tmp_path: Path, url: str) -> Project:
    return Project(tmp_path / "project", url)


def failed_run(project: Project) -> str:
    """A run whose step b failed (c skipped: upstream failed; a and d succeeded)."""
    result = project.run(broken=True)
    assert result.status is RunStatus.FAILED
    assert result.steps["c"].reason == "upstream failed: b"
    assert project.ran() == Counter("abd")
    return result.run_id


def retried(result: pardag.RunResult | str) -> pardag.RunResult:
    assert isinstance(result, pardag.RunResult)
    return result


def test_a_fixed_failure_is_retried_reusing_what_succeeded(project: Project) -> None:
    run_id = failed_run(project)
    project.fix()
    result = retried(pardag.retry(run_id, store=project.url))
    assert result.run_id == run_id and result.status is RunStatus.SUCCEEDED
    assert project.ran() == Counter("bc")  # a and d were not run again
    assert result.outputs["c"] == 20 and result.outputs["d"] == 101
    steps = project.steps(run_id)
    assert steps["a"] == [(1, "succeeded", 1)] and steps["d"] == [(1, "succeeded", 101)]
    assert steps["b"] == [(1, "failed", None), (2, "succeeded", 2)]  # attempts go on
    assert steps["c"][-1] == (1, "succeeded", 20)
    record = project.record(run_id)
    assert (record.status, record.error) == ("succeeded", None) and record.finished_at
    retry = json.loads(record.settings_json)["retried"]
    assert retry["count"] == 1 and set(retry["rerun"]) == {"b", "c"}
    with open_store(project.url) as store:
        seqs = [e.seq for e in store.get_events(run_id)]
    assert seqs == list(range(1, len(seqs) + 1))  # the retry's events follow the first's


def test_a_step_and_its_downstream_run_again_and_the_count_goes_on(project: Project) -> None:
    run_id = failed_run(project)
    project.fix()
    retried(pardag.retry(run_id, store=project.url))
    project.ran()
    result = retried(pardag.retry(run_id, from_="b", store=project.url))
    assert result.status is RunStatus.SUCCEEDED
    assert project.ran() == Counter("bc")
    assert [a for a, _, _ in project.steps(run_id)["b"]] == [1, 2, 3]
    assert json.loads(project.record(run_id).settings_json)["retried"]["count"] == 2


def test_without_downstream_only_the_step_runs_again(project: Project) -> None:
    result = project.run(broken=False)
    project.ran()
    again = retried(pardag.retry(result.run_id, from_="b", downstream=False, store=project.url))
    assert again.status is RunStatus.SUCCEEDED and project.ran() == Counter("b")
    assert again.outputs["c"] == 20  # kept as recorded


def test_all_runs_every_step_again(project: Project) -> None:
    result = project.run(broken=False)
    project.ran()
    again = retried(pardag.retry(result.run_id, from_="all", store=project.url))
    assert again.status is RunStatus.SUCCEEDED and project.ran() == Counter("abcd")


def test_failed_without_downstream_still_runs_the_steps_skipped_for_the_failure(
    project: Project,
) -> None:
    run_id = failed_run(project)
    project.fix()
    with open_store(project.url) as store:
        record = store.get_run(run_id)
        assert record is not None
        plan = plan_retry(store, record, "failed", downstream=False)
    assert (plan.rerun, plan.kept, plan.count) == (("b", "c"), ("a", "d"), 1)
    result = retried(pardag.retry(run_id, downstream=False, store=project.url))
    assert result.status is RunStatus.SUCCEEDED and project.ran() == Counter("bc")


def test_a_run_with_nothing_failed_or_an_unknown_step_is_refused(project: Project) -> None:
    run_id = project.run(broken=False).run_id
    with pytest.raises(ArgumentError, match=r"nothing to retry; give --from all"):
        pardag.retry(run_id, store=project.url)
    with pytest.raises(ArgumentError, match=r"has no step 'x': give 'failed', 'all', or .*a, b"):
        pardag.retry(run_id, from_="x", store=project.url)
    record = project.record(run_id)
    assert record.status == "succeeded" and "retried" not in json.loads(record.settings_json)


def test_only_a_finished_run_is_retried(project: Project) -> None:
    with open_store(project.url) as store:
        for status in ("running", "paused", "queued"):
            store.create_run(pardag.store.RunRecord(f"r-{status}", "retried", status, 1.0))
    with pytest.raises(ArgumentError, match=r"is paused: only a finished run .*pardag resume"):
        pardag.retry("r-paused", store=project.url)
    with pytest.raises(ArgumentError, match=r"is queued: .*`pardag cancel r-queued`"):
        pardag.retry("r-queued", store=project.url)
    with pytest.raises(ArgumentError, match=r"is running: .*pardag cancel r-running"):
        pardag.retry("r-running", store=project.url)
    assert project.record("r-paused").status == "paused"


def test_a_queued_retry_is_run_by_a_worker(project: Project) -> None:
    run_id = failed_run(project)
    project.fix()
    assert pardag.retry(run_id, queue=True, store=project.url) == run_id
    queued = project.record(run_id)
    assert (queued.status, queued.finished_at, queued.error) == ("queued", None, None)
    assert project.ran() == Counter()  # nothing ran here
    with pytest.raises(ArgumentError, match=r"leave out params, or retry it here"):
        pardag.retry(run_id, queue=True, store=project.url, params={"flag": ""})
    with open_store(project.url) as store:
        Worker(store, lease=5, poll=0.05, say=lambda _: None).serve(until_idle=True)
    assert project.record(run_id).status == "succeeded"
    assert project.ran() == Counter("bc")
    assert project.steps(run_id)["c"][-1] == (1, "succeeded", 20)


GATED = """\
name: gated
params:
  ledger: ""
steps:
  a:
    function: rsteps:a
  review:
    kind: approval
    depends_on: a
    prompt: Ship it?
"""


def test_a_rejected_approval_asks_again_when_retried(project: Project) -> None:
    (project.folder / "gated.yaml").write_text(GATED)
    wf = pardag.load(project.folder / "gated.yaml")
    run_id = wf.run(store=project.url, params={"ledger": str(project.ledger)}).run_id
    rejected = pardag.reject(run_id, "review", "not today", store=project.url)
    assert rejected.status is RunStatus.FAILED
    again = retried(pardag.retry(run_id, store=project.url))
    assert again.status is RunStatus.PAUSED  # the earlier "no" does not count any more
    approved = pardag.approve(run_id, "review", store=project.url)
    assert approved.status is RunStatus.SUCCEEDED and approved.outputs["review"] is True
    assert project.ran() == Counter("a")  # once, in the first run


@pytest.fixture
def broken_python(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The project, for the workflows built in Python below: they find the ledger and the
    flag (set: broken) through the environment."""
    monkeypatch.setenv("RETRY_LEDGER", str(project.ledger))
    monkeypatch.setenv("RETRY_FLAG", str(project.flag))
    project.flag.touch()
    return project


def _mark(name: str) -> None:
    with open(os.environ["RETRY_LEDGER"], "a") as ledger:
        ledger.write(name + "\n")


def list_items() -> list[str]:
    _mark("list")
    return ["x0", "x1", "x2", "x3"]


def process(item: str) -> str:
    _mark(item)
    if item == "x2" and os.path.exists(os.environ["RETRY_FLAG"]):
        raise ValueError(f"bad {item}")
    return item.upper()


def report(process: list[str]) -> str:
    _mark("report")
    return "".join(process)


MAPPED = pardag.Workflow("mapped_retry")
MAPPED.add("list_items", list_items)
MAPPED.add("process", process, map_over="list_items")
MAPPED.add("report", report)


def test_a_mapped_step_runs_again_only_its_failed_instances(broken_python: Project) -> None:
    project = broken_python
    first = MAPPED.run(store=project.url, on_failure="continue", executor="inline")
    assert (
        first.status is RunStatus.FAILED and first.steps["report"].state is pardag.StepState.SKIPPED
    )
    assert project.ran() == Counter(["list", "x0", "x1", "x2", "x3"])
    project.fix()
    again = retried(pardag.retry(first.run_id, store=project.url))
    assert again.status is RunStatus.SUCCEEDED and again.outputs["report"] == "X0X1X2X3"
    assert project.ran() == Counter(["x2", "report"])  # the other instances were reused
    everything = retried(pardag.retry(first.run_id, from_="process", store=project.url))
    assert everything.status is RunStatus.SUCCEEDED
    assert project.ran() == Counter(["x0", "x1", "x2", "x3", "report"])


def test_a_retry_cut_short_resumes_without_running_its_finished_steps_again(
    project: Project,
) -> None:
    """The retry's choice is in the store: a resume after a crash in the middle of the retry
    (b ran again and committed, then the process died) runs only what is left (c)."""
    run_id = failed_run(project)
    project.fix()
    pardag.retry(run_id, queue=True, store=project.url)  # reopened, with the retry's choice
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    with open_store(project.url) as store:
        b = StepRecord(
            run_id, "b", 2, "succeeded", output_json="2", started_at=1.0, finished_at=2.0
        )
        dead = f"{socket.gethostname()}:{gone.stdout.strip()}"
        store.write(runs=[RunUpdate(run_id, status="running", owner=dead)], steps=[b])
    result = pardag.resume(run_id, store=project.url)
    assert result.status is RunStatus.SUCCEEDED and result.outputs["c"] == 20
    assert project.ran() == Counter("c")
    assert [a for a, _, _ in project.steps(run_id)["b"]] == [1, 2]


def test_a_retry_that_cannot_start_leaves_the_run_as_it_was(project: Project) -> None:
    run_id = failed_run(project)
    before = project.record(run_id)
    with pytest.raises(ArgumentError, match=r"run\(params=...\): .*'nope'"):
        pardag.retry(run_id, store=project.url, params={"nope": 1})
    after = project.record(run_id)
    assert (after.status, after.finished_at, after.error) == (
        "failed",
        before.finished_at,
        before.error,
    )
    assert project.ran() == Counter()


def blob() -> set[int]:
    _mark("blob")
    return {1, 2}  # JSON cannot hold a set: the store records it as not stored


def use(blob: set[int]) -> int:
    _mark("use")
    if os.path.exists(os.environ["RETRY_FLAG"]):
        raise ValueError("broken")
    return len(blob)


UNSTORED = pardag.Workflow("unstored_retry")
UNSTORED.add("blob", blob)
UNSTORED.add("use", use, depends_on=["blob"])


def test_a_step_whose_output_was_not_stored_runs_again(broken_python: Project) -> None:
    project = broken_python
    with pytest.warns(RuntimeWarning, match="blob"):
        first = UNSTORED.run(store=project.url, executor="inline")
    assert first.status is RunStatus.FAILED and project.ran() == Counter(["blob", "use"])
    project.fix()
    with open_store(project.url) as store:
        record = store.get_run(first.run_id)
        assert record is not None
        assert plan_retry(store, record, "failed", downstream=True).rerun == ("blob", "use")
    with pytest.warns(RuntimeWarning, match="blob"):
        again = retried(pardag.retry(first.run_id, store=project.url))
    assert again.status is RunStatus.SUCCEEDED and again.outputs["use"] == 2
    assert project.ran() == Counter(["blob", "use"])
