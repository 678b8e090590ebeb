"""Deep outputs: a chain of 500 merges and a step returning 2,000 levels, without a raw
traceback (issue 13 §9, fourth item)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import pardag, write


def merge_chain(length: int) -> str:
    lines = ["name: chain", "steps:", "  s0:", "    kind: shell", "    command: echo 1"]
    for i in range(1, length + 1):
        lines += [f"  s{i}:", "    kind: merge", f"    depends_on: [s{i - 1}]"]
    return "\n".join(lines) + "\n"


def test_a_chain_of_500_merges_is_a_clear_step_error(project: Path) -> None:
    write(project, "chain.yaml", merge_chain(500))
    assert pardag(project, "validate", "chain.yaml").returncode == 0
    for args in ((), ("--json",)):
        done = pardag(project, "run", "chain.yaml", *args)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
        assert "its output would nest more than 100 levels deep" in done.stderr
    assert json.loads(done.stdout)["status"] == "failed"


DEEP = """\
name: deep
steps:
  deep:
    kind: python
    function: "deep_value:run"
"""
DEEP_VALUE = """\
def run():
    value = 1
    for _ in range(2000):
        value = [value]
    return value
"""


def test_a_step_output_nested_2000_deep_prints_without_a_traceback(project: Path) -> None:
    write(project, "deep.yaml", DEEP)
    write(project, "deep_value.py", DEEP_VALUE)  # on a thread: no pickling limit
    done = pardag(project, "run", "deep.yaml", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    shown = json.loads(done.stdout)["outputs"]["deep"]
    for _ in range(150):
        shown = shown[0]
    assert "levels deep: not shown" in json.dumps(shown)
    table = pardag(project, "run", "deep.yaml")
    assert table.returncode == 0 and "Traceback" not in table.stderr
