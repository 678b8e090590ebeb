"""The language runtimes are extras: without one, validation says which extra to install.

Each case runs ``pardag`` in a fresh process in which importing the runtime fails exactly as
it does where the package is not installed (``ModuleNotFoundError`` naming it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pardag.errors import MissingRuntime
from pardag.kinds.base import RUNTIMES, import_runtime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FLOWS = {
    "lupa": ("flow.yaml", "steps:\n  a:\n    language: lua\n    code: function run() end\n"),
    "quickjs": ("flow.yaml", "steps:\n  a:\n    language: js\n    code: function run() {}\n"),
    "wasmtime": ("flow.yaml", None),  # the shipped example, whose module is compiled at validation
}


def _without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        f"import runpy, sys; sys.modules[{module!r}] = None; sys.argv = ['pardag', *sys.argv[1:]]; "
        "runpy.run_module('pardag', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("module", "needs", "extra"),
    [
        ("lupa", "Lua steps and .lua workflow files need", "lua"),
        ("quickjs", "JavaScript steps need", "javascript"),
        ("wasmtime", "WebAssembly steps need", "wasm"),
    ],
)
def test_a_step_whose_runtime_is_missing_is_a_validation_problem_naming_the_extra(
    tmp_path: Path, module: str, needs: str, extra: str
) -> None:
    name, text = FLOWS[module]
    if text is None:
        cwd, path = EXAMPLES / "wasm", name
    else:
        (tmp_path / name).write_text(text)
        cwd, path = tmp_path, name
    proc = _without(module, "validate", path, cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    assert f"{needs} the {module!r} package, which is not installed here: " in proc.stderr
    assert f"pip install 'pardag[{extra}]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert RUNTIMES[module] == (needs, extra)


def test_a_lua_file_without_lupa_names_the_file_and_the_extra(tmp_path: Path) -> None:
    (tmp_path / "flow.lua").write_text(
        'workflow = { steps = { a = { kind = "shell", command = "true" } } }\n'
    )
    proc = _without("lupa", "validate", "flow.lua", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "flow.lua: Lua steps and .lua workflow files need the 'lupa' package" in proc.stderr


def test_a_workflow_without_language_steps_does_not_need_the_runtimes(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text("steps:\n  a:\n    kind: shell\n    command: echo hi\n")
    for module in RUNTIMES:
        proc = _without(module, "run", "flow.yaml", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr


def test_import_runtime_passes_other_import_errors_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lupa", None)
    with pytest.raises(MissingRuntime, match=r"pip install 'pardag\[lua\]'"):
        import_runtime("lupa")
    with pytest.raises(ModuleNotFoundError) as info:  # not an optional runtime: as it was
        import_runtime("pardag_no_such_module")
    assert not isinstance(info.value, MissingRuntime)
