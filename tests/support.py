"""Helpers shared by the tests: is a process gone, which children are ours, peak counters,
what validation says of one step."""

from __future__ import annotations

import threading
import time

import pytest

from pardag import ValidationError, Workflow
from pardag.testing.executors import child_pids, pid_gone

__all__ = ["Peak", "child_pids", "eventually_gone", "pid_gone", "step_problems"]


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
