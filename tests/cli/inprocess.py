"""``pardag`` commands run in the test process, for the tests of tests/cli/test_run.py and
test_runs.py that only parse what a command prints as JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

from pardag.cli import app


class Said(NamedTuple):
    """What a command said, as ``subprocess.CompletedProcess`` has it."""

    returncode: int
    stdout: str
    stderr: str


def here(monkeypatch: pytest.MonkeyPatch, cwd: Path, *args: str, **env: str) -> Said:
    """``pardag ARGS`` in ``cwd``, run in this process with typer's ``CliRunner``, for reads
    whose JSON a test parses: the commands read the current directory and the environment
    when they run, so they answer as a fresh process would, without its ~0.6 s of imports.
    Each command read so also runs as a real process in the same test file (exit codes, no
    traceback, stdout and stderr kept apart). ``env``: variables set on the environment
    ``clean_env`` leaves (no other ``PARDAG_*``)."""
    monkeypatch.chdir(cwd)
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PARDAG_")}
    done = CliRunner().invoke(app, list(args), env={**unset, "COLUMNS": "200", **env})
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Said(done.exit_code, done.stdout, done.stderr)
