"""Helpers of the ``pardag`` command tests: a clean environment, ``pardag`` as a real
subprocess, a workflow file written to the test's directory, and the workflows several
test files run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FLOW = """\
name: demo
steps:
  a:
    kind: shell
    command: echo '{"n":1}'
  b:
    kind: shell
    depends_on: a
    command: echo '{"n":2}'
  c:
    kind: shell
    depends_on: a
    command: echo '{"n":3}'
  d:
    kind: shell
    depends_on: [b, c]
    command: echo '{"n":4}'
"""

BRANCHES = """\
name: branches
params:
  limits:
    rows: 1
    floor: 5
steps:
  check:
    kind: condition
    expression: params.limits.rows > params.limits.floor
  big:
    kind: shell
    depends_on: check
    branch: {check: "true"}
    command: echo '{"size":"big"}'
  small:
    kind: shell
    depends_on: check
    branch: {check: "false"}
    command: echo '{"size":"small"}'
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that changes settings or forces colour."""
    forcing = {"FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_") and k not in forcing}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def pardag(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def start_run(project: Path, name: str, text: str) -> tuple[subprocess.Popen[str], str]:
    """``pardag run NAME`` (written from ``text``) in the background, in its own process
    group, and the run's id, which it prints first."""
    write(project, name, text)
    run = subprocess.Popen(
        [sys.executable, "-m", "pardag", "run", name],
        cwd=project,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert run.stderr is not None
    return run, run.stderr.readline().split()[1]


def interrupted(cwd: Path, args: list[str], marker: Path) -> tuple[int, str, str]:
    """``pardag ARGS`` run until ``marker`` appears (a step is running), then one Ctrl-C:
    its exit code, stdout and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():  # the step is running now
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, stdout, stderr
