"""A user's first script: no ``if __name__ == "__main__":`` guard, steps in worker processes.

Each test writes a script to a temporary directory and runs it with the real interpreter, as
``python script.py``, as ``python -`` (its source on stdin) and as ``python -c`` (no
``__file__``, as in a REPL). Its top-level statement appends a line to a file: a worker that
ran the user's ``__main__`` again would append a second one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

BOOTSTRAP = "bootstrapping phase"
"""From multiprocessing's error when a re-imported ``__main__`` starts a process."""

FUNCTIONS = """
    import dataclasses
    import os

    import pardag

    with open("side-effect.txt", "a") as f:
        f.write("the script ran\\n")


    @dataclasses.dataclass
    class Point:
        x: int


    def double(point):
        return Point(point.x * 2)


    def adder(n):
        def add():
            return n + 1

        return add


    wf = pardag.Workflow("script")
    wf.add("pid", os.getpid, executor="processes")
    wf.add("lambda", lambda: 41 + 1, executor="processes")
    wf.add("closure", adder(9), executor="processes")
    wf.add("point", lambda: Point(2), executor="processes")
    wf.add("double", double, depends_on=["point"], executor="processes")
    result = wf.run()
    assert result.status == "succeeded", result.error
    out = result.outputs
    assert out["pid"] != os.getpid()
    assert (out["lambda"], out["closure"]) == (42, 10)
    assert out["double"] == Point(4)  # the very class of this script, back from the worker
    print("ok")
"""

CODE_STEPS = """
    import pardag

    with open("side-effect.txt", "a") as f:
        f.write("the script ran\\n")

    result = pardag.load("flow.{ext}").run()
    assert result.status == "succeeded", result.error
    assert result.outputs["total"] == 6
    print("ok")
"""

YAML_FLOW = """
    name: code-steps
    steps:
      rows:
        language: python
        code: |
          def run():
              return [3, 1, 2]
      total:
        language: python
        depends_on: rows
        code: |
          def run(rows):
              return sum(rows)
"""

LUA_FLOW = """
    workflow = {
      name = "code-steps",
      steps = {
        rows = { language = "python", code = "def run():\\n    return [3, 1, 2]\\n" },
        total = {
          language = "python",
          depends_on = {"rows"},
          code = "def run(rows):\\n    return sum(rows)\\n",
        },
      },
    }
"""

HOW = ["file", "stdin", "-c"]


def run_script(directory: Path, source: str, how: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a main module the way ``how`` says, in ``directory``."""
    source = textwrap.dedent(source)
    if how == "file":
        (directory / "script.py").write_text(source)
        command, stdin = [sys.executable, "script.py"], None
    elif how == "stdin":
        command, stdin = [sys.executable, "-"], source
    else:
        command, stdin = [sys.executable, "-c", source], None
    return subprocess.run(
        command, cwd=directory, input=stdin, capture_output=True, text=True, timeout=100
    )


def assert_ran_once(directory: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert BOOTSTRAP not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    assert (directory / "side-effect.txt").read_text() == "the script ran\n"


@pytest.mark.parametrize("how", HOW)
def test_functions_of_a_script_without_a_main_guard_run_on_processes(
    tmp_path: Path, how: str
) -> None:
    assert_ran_once(tmp_path, run_script(tmp_path, FUNCTIONS, how))


@pytest.mark.parametrize(("ext", "how"), [*(("yaml", how) for how in HOW), ("lua", "file")])
def test_a_script_without_a_main_guard_runs_python_code_steps(
    tmp_path: Path, how: str, ext: str
) -> None:
    if ext == "lua":
        pytest.importorskip("lupa")
    (tmp_path / f"flow.{ext}").write_text(textwrap.dedent(YAML_FLOW if ext == "yaml" else LUA_FLOW))
    assert_ran_once(tmp_path, run_script(tmp_path, CODE_STEPS.format(ext=ext), how))
