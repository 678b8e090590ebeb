"""``pardag run/validate/graph flow.py[:name]``: a workflow defined in Python, loaded by
importing the file (never as ``__main__``), recorded so that a paused run goes on later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pardag import ValidationError, load
from tests.cli.support import pardag, write

GATE = """\
import pardag

wf = pardag.Workflow("gate", max_concurrency=2)


@wf.step
def a():
    with open("a.count", "a") as f:
        f.write("x")
    return 1


wf.add("review", kind="approval", depends_on=["a"], params={"prompt": "ok?"})


@wf.step
def b(a, review):
    return a + 1


if __name__ == "__main__":
    raise SystemExit("the main part ran")
"""

TWO = """\
import pardag

build = pardag.Workflow("build")
build.add("one", lambda: 1)
deploy = pardag.Workflow("deploy")
deploy.add("two", lambda: 2)
"""


def test_run_a_python_file_records_it_so_that_approve_goes_on_elsewhere(project: Path) -> None:
    write(project, "gate.py", GATE)
    paused = pardag(project, "run", "gate.py", "--json")
    assert paused.returncode != 0, paused.stderr
    result = json.loads(paused.stdout)
    assert result["status"] == "paused" and "the main part ran" not in paused.stderr
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    store = str(project / ".pardag" / "runs.db")
    done = pardag(elsewhere, "approve", "--store", store, result["run_id"], "review", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["b"] == 2
    assert (project / "a.count").read_text() == "x"  # a ran once, before the pause


def test_validate_and_graph_take_a_python_file_and_its_settings(project: Path) -> None:
    write(project, "gate.py", GATE)
    done = pardag(project, "validate", "gate.py:wf")
    assert done.returncode == 0 and "gate.py:wf: valid (3 steps" in done.stdout
    assert "a --> review" in pardag(project, "graph", "gate.py", "-f", "mermaid").stdout
    shown = pardag(project, "run", "gate.py", "--show-settings", "--json")
    assert json.loads(shown.stdout)["max_concurrency"]["value"] == 2


def test_several_workflows_are_named_and_one_is_chosen_by_name(project: Path) -> None:
    write(project, "two.py", TWO)
    done = pardag(project, "validate", "two.py")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "defines 2 Workflows (build, deploy); name the one to use: two.py:build" in done.stderr
    ok = pardag(project, "run", "two.py:deploy", "--json")
    assert json.loads(ok.stdout)["outputs"] == {"two": 2}
    wrong = pardag(project, "run", "two.py:deplyo")
    assert "has no Workflow named 'deplyo'; did you mean two.py:deploy?" in wrong.stderr


def test_a_file_without_a_workflow_says_what_it_found(tmp_path: Path) -> None:
    path = write(tmp_path, "none.py", "def main():\n    pass\n\nLIMIT = 3\n")
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.message.startswith(
        "defines no Workflow at module level (it defines: main (function), LIMIT (int))"
    )


def test_a_file_that_fails_to_import_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "import pardag\n\nwf = pardag.Workflow(nmae='x')\n")
    with pytest.raises(ValidationError) as info:
        load(path)
    assert info.value.problems[0].message.startswith("importing it failed at line 3: TypeError")
    syntax = write(tmp_path, "syntax.py", "wf = (\n")
    with pytest.raises(ValidationError, match="Python syntax error at line 1"):
        load(syntax)
