"""``pardag validate`` and ``graph`` read no device or FIFO and run no step code (issue 13
§9, second item). Each command runs in a subprocess with a timeout, so a broken
implementation fails the test instead of hanging it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.support import pardag

WASM = """\
name: wasm
steps:
  mod:
    kind: wasm
    module: {module}
"""


def special(tmp_path: Path, what: str) -> str:
    """The path of a device, a FIFO with no writer, or a directory."""
    if what == "device":
        return "/dev/zero"
    path = tmp_path / f"special.{what}"
    if what == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return str(path)


@pytest.mark.parametrize("what", ["device", "fifo", "directory"])
@pytest.mark.parametrize("command", ["validate", "graph"])
def test_a_wasm_module_that_is_no_regular_file_is_a_problem(
    tmp_path: Path, what: str, command: str
) -> None:
    pytest.importorskip("wasmtime")
    module = special(tmp_path, what)
    (tmp_path / "flow.yaml").write_text(WASM.format(module=module))
    done = pardag(tmp_path, command, "flow.yaml")
    assert done.returncode == 2, done.stderr
    shown = (
        "a device"
        if what == "device"
        else "a FIFO (named pipe)"
        if what == "fifo"
        else "a directory"
    )
    assert f"cannot read module file {module!r}: it is {shown}, not a regular file" in done.stderr
    assert "flow.yaml:3: step 'mod': " in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("what", ["device", "fifo"])
def test_a_workflow_file_that_is_no_regular_file_is_refused(tmp_path: Path, what: str) -> None:
    path = special(tmp_path, what)
    for command in ("validate", "graph", "run"):
        done = pardag(tmp_path, command, path)
        assert done.returncode == 2, done.stderr
        assert "not a regular file; give the path of a workflow file" in done.stderr


PLANTED = """\
name: planted
steps:
  clean:
    kind: python
    function: "planted_steps:clean"
"""


def test_validate_and_graph_run_no_step_code(tmp_path: Path) -> None:
    """A module beside the flow writes a canary when imported: checking or drawing the flow
    leaves none; running it does (the step really calls the module)."""
    canary = tmp_path / "canary"
    (tmp_path / "planted_steps.py").write_text(
        f"open({str(canary)!r}, 'w').close()\ndef clean():\n    return 'clean'\n"
    )
    (tmp_path / "flow.yaml").write_text(PLANTED)
    for command in ("validate", "graph"):
        done = pardag(tmp_path, command, "flow.yaml")
        assert done.returncode == 0, done.stderr
        assert not canary.exists(), command
    assert pardag(tmp_path, "run", "flow.yaml").returncode == 0
    assert canary.exists()
