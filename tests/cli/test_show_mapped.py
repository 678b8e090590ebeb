"""``pardag show`` of a run with a mapped step (issue 14), through real ``pardag`` processes:
instances grouped under their mapped step as ``pardag run`` groups them, every one with
``--instances``, one instance shown like any step and naming its parent, and the JSON keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.support import pardag, write

FLOW = """\
name: mapped
steps:
  list_items:
    language: python
    code: |
      def run(inputs):
          return ["a", "b", "c", "d"]
  process:
    kind: shell
    for_each: list_items
    command: test {{ item }} != c && echo '{"ok":true}'
  report:
    kind: shell
    depends_on: process
    command: echo done
"""
INSTANCES = [f"process[{k}]" for k in range(4)]
Ran = tuple[Path, str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """The run (``process[2]`` fails, the others run on): its directory, id and process."""
    project = tmp_path_factory.mktemp("mapped")
    (project / ".git").mkdir()
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml", "--on-failure", "continue")
    assert done.returncode == 1, done.stderr
    return project, done.stderr.split()[1], done


def row_ids(stdout: str) -> list[str]:
    """The step column of ``show``'s table (under its head and header lines)."""
    table = stdout.split("\n\n")[0].splitlines()[2:]
    return [line.split()[0] for line in table if not line.startswith(" ")]


def test_show_groups_the_instances_under_their_mapped_step(ran: Ran) -> None:
    project, run_id, _ = ran
    shown = pardag(project, "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert row_ids(shown.stdout) == ["list_items", "process", "process[2]", "report"]
    (row,) = [line for line in shown.stdout.splitlines() if line.startswith("process ")]
    assert "3/4 succeeded, 1 failed; 1 of 4 instances failed; process[2]" in row


def test_show_instances_lists_every_one_in_item_order(ran: Ran) -> None:
    project, run_id, _ = ran
    shown = pardag(project, "show", run_id, "--instances")
    assert shown.returncode == 0, shown.stderr
    assert row_ids(shown.stdout) == ["list_items", "process", *INSTANCES, "report"]


def test_show_of_an_instance_names_its_mapped_step(ran: Ran) -> None:
    project, run_id, _ = ran
    shown = pardag(project, "show", run_id, "process[2]")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1] == "an instance of mapped step process"
    assert "attempt 1: failed" in shown.stdout
    doc = json.loads(pardag(project, "show", run_id, "process[2]", "--json").stdout)
    assert doc["parent"] == "process" and "instances" not in doc
    assert doc["log"] == f"pardag logs {run_id[:12]} 'process[2]'"  # quoted for the shell

    mapped = json.loads(pardag(project, "show", run_id, "process", "--json").stdout)
    assert mapped["instances"] == 4 and "parent" not in mapped
    assert "mapped: 4 instances" in pardag(project, "show", run_id, "process").stdout


def test_an_instance_past_the_list_is_an_error_naming_the_instances(
    ran: Ran,
) -> None:
    project, run_id, _ = ran
    shown = pardag(project, "show", run_id, "process[7]")
    assert shown.returncode == 2
    assert "mapped step 'process' has 4 instances, process[0] to process[3]" in shown.stderr


def test_run_and_show_json_give_parent_and_instances_alike(ran: Ran) -> None:
    project, run_id, _ = ran
    recorded = json.loads(pardag(project, "show", run_id, "--json").stdout)["steps"]
    fresh = json.loads(pardag(project, "run", "flow.yaml", "--json").stdout)["steps"]
    assert list(fresh) == list(recorded)
    for sid, step in recorded.items():
        assert set(step) == set(fresh[sid]), sid
    assert {sid: s.get("parent") for sid, s in recorded.items() if "parent" in s} == dict.fromkeys(
        INSTANCES, "process"
    )
    assert recorded["process"]["instances"] == fresh["process"]["instances"] == 4
    assert not {"parent", "instances"} & (set(recorded["list_items"]) | set(recorded["report"]))


def test_run_names_the_failed_instance_quoted_for_the_shell(ran: Ran) -> None:
    _, run_id, done = ran
    assert done.stderr.rstrip().splitlines()[-2:] == [
        f"pardag show {run_id[:12]} 'process[2]'  for the traceback and every attempt",
        f"pardag retry {run_id[:12]}  once fixed: runs what failed again, reuses the rest",
    ]
