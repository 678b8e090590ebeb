"""``pardag validate`` and ``pardag graph``, run as a real subprocess on workflow files
written to tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.support import BRANCHES, FLOW, pardag, write

INVALID = """\
steps:
  extract:
    kind: shell
    command: echo hi
    timeout: [1]
  load:
    kind: shell
    depend_on: extract
    command: echo hi
"""


# -- validate -----------------------------------------------------------------------------------


def test_validate_lists_every_problem_with_file_and_line(project: Path) -> None:
    write(project, "bad.yaml", INVALID)
    done = pardag(project, "validate", "bad.yaml")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "error: bad.yaml is invalid (2 problems):"
    assert any(line.strip().startswith("bad.yaml:5: step 'extract': ") for line in lines)
    assert any(
        line.strip().startswith("bad.yaml:8: step 'load': ") and "'depends_on'" in line
        for line in lines
    )
    assert "Traceback" not in done.stderr


def test_validate_reports_graph_problems_at_the_step_line(project: Path) -> None:
    write(project, "flow.yaml", FLOW.replace("depends_on: [b, c]", "depends_on: [b, cc]"))
    done = pardag(project, "validate", "flow.yaml")
    assert done.returncode == 2
    assert "flow.yaml:16: step 'd': depends on unknown step 'cc'; did you mean 'c'?" in done.stderr


def test_validate_a_valid_file(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "validate", "flow.yaml")
    assert done.returncode == 0
    assert done.stdout == "flow.yaml: valid (4 steps, 3 levels)\n"


def test_usage_errors_exit_2(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    assert pardag(project, "run").returncode == 2
    assert pardag(project, "graph", "flow.yaml", "--format", "png").returncode == 2
    assert pardag(project, "run", "flow.yaml", "--set", "no-equals-sign").returncode == 2
    missing = pardag(project, "run", "missing.yaml")
    assert missing.returncode == 2
    assert "missing.yaml" in missing.stderr and "Traceback" not in missing.stderr


# -- graph --------------------------------------------------------------------------------------


def test_graph_mermaid(project: Path) -> None:
    write(project, "branches.yaml", BRANCHES)
    done = pardag(project, "graph", "branches.yaml", "--format", "mermaid")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "graph TD",
        '    check{"check"}',
        '    big["big"]',
        '    small["small"]',
        "    check -->|true| big",
        "    check -->|false| small",
    ]


def test_graph_dot(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "graph", "flow.yaml", "--format", "dot")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == 'digraph "demo" {' and lines[-1] == "}"
    edges = {line.strip() for line in lines if "->" in line}
    assert edges == {'"a" -> "b";', '"a" -> "c";', '"b" -> "d";', '"c" -> "d";'}


def test_graph_dot_labels_branches(project: Path) -> None:
    write(project, "branches.yaml", BRANCHES)
    done = pardag(project, "graph", "branches.yaml", "-f", "dot")
    assert '    "check" [shape=diamond];' in done.stdout.splitlines()
    assert '    "check" -> "big" [label="true"];' in done.stdout.splitlines()


def test_graph_levels(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "graph", "flow.yaml", "--format", "levels")
    assert done.stdout == "level 0: a\nlevel 1: b, c\nlevel 2: d\n"


def test_graph_ascii(project: Path) -> None:
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "graph", "flow.yaml", "--format", "ascii")
    assert done.stdout.splitlines() == [
        "demo: 4 steps in 3 levels; critical path a -> b -> d",
        "a",
        "+-- b",
        "|   `-- d",
        "`-- c",
        "    `-- d (see above)",
    ]
    write(project, "branches.yaml", BRANCHES)
    done = pardag(project, "graph", "branches.yaml")  # ascii is the default
    assert done.stdout.splitlines()[1:] == [
        "check (condition)",
        "+-- [true] big",
        "`-- [false] small",
    ]


def test_graph_of_an_invalid_file_exits_2(project: Path) -> None:
    write(project, "bad.yaml", INVALID)
    done = pardag(project, "graph", "bad.yaml")
    assert done.returncode == 2 and done.stdout == ""


# -- the docs -----------------------------------------------------------------------------------


def test_the_graph_drawings_in_the_docs_are_true(project: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    fenced = re.findall(r"^```(\w*)\n(.*?)^```$", docs, re.MULTILINE | re.DOTALL)
    write(project, "flow.yaml", next(body for lang, body in fenced if lang == "yaml"))
    blocks = [body for lang, body in fenced if not lang]
    for fmt in ("mermaid", "dot", "levels", "ascii"):
        drawn = pardag(project, "graph", "flow.yaml", "--format", fmt)
        assert drawn.returncode == 0, drawn.stderr
        assert drawn.stdout in blocks, fmt
