"""Which config file ``pardag`` reads, said by ``--show-settings``; hostile files refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.support import FLOW, pardag, write


def test_show_settings_names_the_config_file_read(project: Path) -> None:
    write(project, "pardag.toml", 'mode = "levels"\n')
    (project / "sub").mkdir()
    write(project / "sub", "flow.yaml", FLOW)
    table = pardag(project / "sub", "run", "flow.yaml", "--show-settings").stdout
    assert f"config file: {project / 'pardag.toml'} (found searching {project / 'sub'} up to" in (
        table
    )
    shown = json.loads(
        pardag(project / "sub", "run", "flow.yaml", "--show-settings", "--json").stdout
    )
    assert shown["config_file"]["value"] == str(project / "pardag.toml")
    (project / "pardag.toml").unlink()
    shown = json.loads(
        pardag(project / "sub", "run", "flow.yaml", "--show-settings", "--json").stdout
    )
    assert shown["config_file"] == {
        "value": None,
        "source": f"none found; searched {project / 'sub'} up to {project}",
    }
    given = pardag(project / "sub", "run", "flow.yaml", "--show-settings", "--config", "../x.toml")
    assert given.returncode == 2 and "x.toml" in given.stderr and "Traceback" not in given.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_planted_config_file_does_not_redirect_the_store(tmp_path: Path) -> None:
    """The attack, end to end: another user's pardag.toml in a shared folder above the
    project names a store; the run records to the project's own store and the warning names
    the refused file."""
    shared = tmp_path / "shared"
    (shared / "project").mkdir(parents=True)
    shared.chmod(0o1777)
    stolen = tmp_path / "stolen.db"
    planted = write(shared, "pardag.toml", f'store = "{stolen}"\n')
    os.chown(planted, 65534, 65534)
    project = shared / "project"
    write(project, "flow.yaml", FLOW)
    done = pardag(project, "run", "flow.yaml")
    assert done.returncode == 0, done.stderr
    assert not stolen.exists() and (project / ".pardag" / "runs.db").is_file()
    assert f"warning: {planted}: ignored, the file is owned by user id 65534" in done.stderr
    table = pardag(project, "run", "flow.yaml", "--show-settings").stdout
    assert "config file: none (refused, see the warning; searched" in table


@pytest.mark.parametrize("device", ["/dev/zero", "fifo", "folder"])
def test_a_config_file_that_is_no_regular_file_is_refused(project: Path, device: str) -> None:
    """``--config /dev/zero`` used to read forever; a FIFO without a writer blocked."""
    write(project, "flow.yaml", FLOW)
    path = device
    if device == "fifo":
        os.mkfifo(project / "fifo.toml")
        path = str(project / "fifo.toml")
    elif device == "folder":
        (project / "folder.toml").mkdir()
        path = str(project / "folder.toml")
    done = pardag(project, "run", "flow.yaml", "--config", path)
    assert done.returncode == 2
    assert (
        f"{path}: is a" in done.stderr
        and "not a regular file" in done.stderr
        and "Traceback" not in done.stderr
    )
