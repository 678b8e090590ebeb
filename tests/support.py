"""Helpers shared by the tests: is a process gone, which children are ours, peak counters,
what validation says of one step, a ``pardag`` command run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pardag
from pardag import ValidationError, Workflow
from pardag.testing.executors import child_pids, pid_gone

__all__ = ["Peak", "child_pids", "eventually_gone", "pardag_cli", "pid_gone", "step_problems"]


def pardag_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pardag ARGS`` in ``cwd``, importing this checkout's pardag (an absolute
    path), with no ``PARDAG_*`` setting of the caller's and a wide terminal."""
    source = str(Path(pardag.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_")}
    return subprocess.run(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200", "PYTHONPATH": source},
        capture_output=True,
        text=True,
        timeout=120,
    )


def eventually_gone(pid: int, within: float = 5.0) -> bool:
    """Wait up to ``within`` seconds for ``pid`` to be gone; True if it went."""
    deadline = time.monotonic() + within
    while not pid_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid_gone(pid)


class Peak:
    """Counts how many callers are inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def step_problems(wf: Workflow, step: str) -> list[str]:
    """The messages validating ``wf`` gives, after checking that every one is about ``step``."""
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert all(problem.step == step for problem in info.value.problems), info.value
    return [problem.message for problem in info.value.problems]


CRASH_PRELUDE = """
import os, signal, time
from pathlib import Path
import pardag
from pardag.store import open_store

LEDGER = Path(os.environ["LEDGER"])
mark = lambda name: LEDGER.open("a").write(name + "\\n")

def kill_once(workflow, step, state=None):
    \"\"\"SIGKILL this process once ``step`` is recorded (in ``state``, if given).\"\"\"
    with open_store(os.environ["STORE"]) as store:
        (run,) = store.list_runs(workflow=workflow)
        while not any(
            s.step_id == step and state in (None, s.state) for s in store.get_steps(run.run_id)
        ):
            time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)
"""
"""The start of a crash script: a ledger the steps mark (``$LEDGER``), and ``kill_once``, which
kills the script's own process once a step reaches the store (``$STORE``)."""
