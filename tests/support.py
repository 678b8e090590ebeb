"""Helpers shared by the tests: is a process gone, which children are ours, peak counters,
what validation says of one step."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pardag import ValidationError, Workflow

SHARED_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
"""Processes multiprocessing shares between all pools; they outlive any one executor."""


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def eventually_gone(pid: int, within: float = 5.0) -> bool:
    """Wait up to ``within`` seconds for ``pid`` to be gone; True if it went."""
    deadline = time.monotonic() + within
    while not pid_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid_gone(pid)


def child_pids() -> set[int]:
    """Our live child processes, leaving out multiprocessing's shared helpers (Linux)."""
    children = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        shared = any(helper in cmdline for helper in SHARED_HELPERS)
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and not shared:
            children.add(int(entry.name))
    return children


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
