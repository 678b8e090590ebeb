"""A file beside a workflow never shadows an installed package (``pardag.searchpath``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import clean_env

FLOW = """\
name: js
steps:
  add:
    language: javascript
    code: "function run(inputs) { return 1 + 1; }"
  clean:
    kind: python
    function: "etl_steps:clean"
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_a_planted_module_beside_the_flow_does_not_run(tmp_path: Path, how: str) -> None:
    """A ``quickjs.py`` beside the flow used to run when validation imported the JavaScript
    runtime: the folder went first on sys.path. The project's own module still loads."""
    marker = tmp_path / "planted-ran"
    (tmp_path / "quickjs.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "etl_steps.py").write_text("def clean():\n    return 'clean'\n")
    (tmp_path / "flow.yaml").write_text(FLOW)
    pardag = (
        [str(Path(sys.executable).parent / "pardag")]
        if how == "script"
        else [sys.executable, "-m", "pardag"]
    )
    for args in (["validate", "flow.yaml"], ["run", "flow.yaml", "--json"]):
        done = subprocess.run(
            [*pardag, *args], cwd=tmp_path, env=clean_env(), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert not marker.exists(), args
    assert '"clean": "clean"' in done.stdout and '"add": 2' in done.stdout


def test_a_planted_file_never_stands_in_for_a_runtime_that_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the runtime missing, a ``quickjs.py`` in the project folder is the only match on
    sys.path; it is refused as "not installed" and its code does not run."""
    from pardag import searchpath
    from pardag.errors import MissingRuntime
    from pardag.kinds import base

    marker = tmp_path / "planted-ran"
    (tmp_path / "pardag_fake_runtime.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.setitem(base.RUNTIMES, "pardag_fake_runtime", ("fake steps need", "fake"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(searchpath, "_FOLDERS", set(), raising=False)
    searchpath.add_folder(str(tmp_path))
    with pytest.raises(MissingRuntime, match="'pardag_fake_runtime' package, which is not"):
        base.import_runtime("pardag_fake_runtime")
    assert not marker.exists() and "pardag_fake_runtime" not in sys.modules
