"""Mapped steps in the run store (issue 14), on SQLite and on PostgreSQL: each instance is
recorded under its id, its parent is read back from that id (``pardag.store.instance_parent``),
``pardag show`` groups and names them, and a run killed mid-map resumes only the instances
that had not finished.

A run that *failed* is final: ``resume`` refuses it (it finishes only runs whose process
died, or paused ones), so rerunning a failed instance means a new run; the tests say so.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pardag
from pardag import RunStatus
from pardag.store import instance_parent, instances_of, open_store
from tests.cli.support import clean_env
from tests.cli.support import pardag as pardag_cli
from tests.test_map import CRASHING_MAP

ITEMS = [f"item{k}" for k in range(12)]
BAD = 10
"""The failing item: past 9, so that item order is not the order of the ids as text."""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


def shout(item: str) -> str:
    if item == ITEMS[BAD]:
        raise ValueError(f"bad {item}")
    return item.upper()


def failing_map(url: str) -> pardag.RunResult:
    """list_items -> process (mapped; item 10 fails, the others run on) -> report."""
    wf = pardag.Workflow("mapped_store")
    wf.add("list_items", lambda: ITEMS)
    wf.add("process", shout, map_over="list_items")
    wf.add("report", lambda process: len(process))
    return wf.run(store=url, on_failure="continue", executor="inline")


def test_each_instance_is_recorded_and_read_back_with_its_parent(store_url: str) -> None:
    result = failing_map(store_url)
    assert result.status is RunStatus.FAILED
    with open_store(store_url) as store:
        steps = {s.step_id: s for s in store.get_steps(result.run_id)}
    expected = [f"process[{k}]" for k in range(len(ITEMS))]
    assert instances_of(steps) == {"process": expected}  # item order: process[10] after [9]
    assert {sid: instance_parent(sid, steps) for sid in steps} == {
        "list_items": None,
        "process": None,
        "report": None,
        **dict.fromkeys(expected, "process"),
    }
    for k, sid in enumerate(expected):
        if k == BAD:
            assert steps[sid].state == "failed"
            assert f"ValueError: bad {ITEMS[k]}" in (steps[sid].error or "")
        else:
            assert steps[sid].state == "succeeded"
            assert json.loads(steps[sid].output_json or "null") == ITEMS[k].upper()
    assert steps["process"].state == "failed"
    assert steps["process"].reason == (
        f"1 of 12 instances failed; process[{BAD}]: ValueError: bad {ITEMS[BAD]}"
    )
    assert steps["report"].state == "skipped"


def test_a_failed_mapped_run_is_final_resume_refuses_it(store_url: str) -> None:
    result = failing_map(store_url)
    with pytest.raises(pardag.ArgumentError, match=r"already finished: failed.*start a new run"):
        pardag.resume(result.run_id, store=store_url)


def test_show_groups_and_names_the_instances_read_from_the_store(
    store_url: str, tmp_path: Path
) -> None:
    run_id = failing_map(store_url).run_id
    shown = pardag_cli(tmp_path, "show", run_id, "--store", store_url)
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout.split("\n\n")[0].splitlines()[2:]  # under the head and header lines
    ids = [line.split()[0] for line in table if not line.startswith(" ")]
    assert ids == ["list_items", "process", f"process[{BAD}]", "report"]
    assert "11/12 succeeded, 1 failed;" in shown.stdout

    doc = json.loads(pardag_cli(tmp_path, "show", run_id, "--store", store_url, "--json").stdout)
    assert doc["steps"]["process"]["instances"] == 12
    assert doc["steps"]["process[3]"]["parent"] == "process"
    assert "parent" not in doc["steps"]["report"] and "instances" not in doc["steps"]["report"]

    one = pardag_cli(tmp_path, "show", run_id, f"process[{BAD}]", "--store", store_url)
    assert one.returncode == 0, one.stderr
    assert "an instance of mapped step process" in one.stdout
    assert f"ValueError: bad {ITEMS[BAD]}" in one.stdout


def test_a_run_killed_mid_map_resumes_only_the_unfinished_instances(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash of tests/test_map.py (a kill -9 while ``process[2]`` runs), on both stores."""
    script, ledger = tmp_path / "crashmap.py", tmp_path / "ledger"
    script.write_text(CRASHING_MAP)
    monkeypatch.setenv("LEDGER", str(ledger))  # the crashed process's, and the resumed steps'
    monkeypatch.setenv("STORE", store_url)
    crashed = subprocess.run([sys.executable, str(script)], env=clean_env(), timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    with open_store(store_url) as store:
        (run,) = store.list_runs(workflow="crashmap")
        before = {s.step_id for s in store.get_steps(run.run_id)}
    assert instance_parent("process[2]", before) == "process"  # recorded before the kill

    result = pardag.resume(run.run_id, store=store_url)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["process"] == [0, 10, 20, 30]  # the full list, in item order
    ran = ledger.read_text().split()
    assert ran.count("list") == 1 and ran.count("item2") == 2
    assert ran.count("item0") == ran.count("item1") == ran.count("item3") == 1
    with open_store(store_url) as store:
        every = store.get_steps(run.run_id)
    ids = {s.step_id for s in every}
    assert instances_of(ids) == {"process": [f"process[{k}]" for k in range(4)]}
    attempts = sorted(s.attempt for s in every if s.step_id == "process[2]")
    assert attempts == [1, 2]  # the cut-short attempt stays; the rerun is the next one
    last = max((s for s in every if s.step_id == "process"), key=lambda s: s.attempt)
    assert json.loads(last.output_json or "null") == [0, 10, 20, 30]
