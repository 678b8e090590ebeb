"""A run killed with ``kill -9`` is not listed as running for ever: ``runs`` and ``show`` mark
it ``running (owner gone)`` with the commands that finish it, and ``--json`` says so too.
A real ``pardag run`` process is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.cli.support import pardag, start_run

HELD = """\
name: held
steps:
  hold:
    kind: shell
    command: touch started; sleep 30; echo '{"held":true}'
  after:
    kind: shell
    depends_on: hold
    command: echo '{"after":true}'
"""


def test_runs_and_show_mark_a_run_whose_process_was_killed(project: Path) -> None:
    proc, run_id = start_run(project, "held.yaml", HELD)
    short = run_id[:12]
    try:
        deadline = time.monotonic() + 30
        while not (project / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "step never started"
            time.sleep(0.05)
        alive = json.loads(pardag(project, "runs", "--json").stdout)
        assert [(r["status"], r["owner_gone"]) for r in alive] == [("running", False)]
        assert "owner gone" not in pardag(project, "show", run_id).stdout
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its shell step, at once
        proc.communicate(timeout=30)

    listed = pardag(project, "runs")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(short))
    assert "running (owner gone)" in row
    hint = f"`pardag resume {short}` finishes it"
    assert f"run {short}: its process (" in listed.stderr and hint in listed.stderr
    assert f"`pardag cancel {short}` marks it cancelled" in listed.stderr
    rows = json.loads(pardag(project, "runs", "--json").stdout)
    assert [(r["status"], r["owner_gone"]) for r in rows] == [("running", True)]

    shown = pardag(project, "show", short)
    assert f"run {run_id}  held  running (owner gone)" in shown.stdout
    assert "note: its process (" in shown.stdout and hint in shown.stdout
    as_json = json.loads(pardag(project, "show", short, "--json").stdout)
    assert as_json["status"] == "running" and as_json["owner_gone"] is True  # stored as is

    cancelled = pardag(project, "cancel", short)  # the command the hint gives
    assert cancelled.returncode == 0, cancelled.stderr
    after = json.loads(pardag(project, "runs", "--json").stdout)
    assert [(r["status"], r["owner_gone"]) for r in after] == [("cancelled", False)]
    hold = json.loads(pardag(project, "show", short, "--json").stdout)["steps"]["hold"]
    assert (hold["state"], hold["reason"]) == (  # not left running either
        "cancelled",
        "cancelled by `pardag cancel` (its process was gone)",
    )
