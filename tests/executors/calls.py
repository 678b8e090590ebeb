"""Module-level step functions for the processes executor's own tests.

Importable functions cross to a worker process by reference, as most users' do, so the calls
the tests submit live in a module: the conformance suite's in ``pardag.testing.calls`` (used
here too), the ones only the processes tests need here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from pardag.testing.calls import WAIT_LIMIT, add, echo, mark_and_sleep, raise_stop_iteration

__all__ = [
    "NeedsTwoArgs",
    "add",
    "echo",
    "exit_now",
    "getpid",
    "mark_and_sleep",
    "raise_needs_two_args",
    "raise_stop_iteration",
    "return_lock",
    "segfault",
    "start_grandchild_and_sleep",
]


def getpid() -> int:
    return os.getpid()


def exit_now(code: int) -> None:
    os._exit(code)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(WAIT_LIMIT)


def start_grandchild_and_sleep(directory: str) -> None:
    """Start a long ``sleep`` process, record its pid in ``grandchild``, then hang."""
    child = subprocess.Popen(["sleep", "60"])
    scratch = Path(directory, "grandchild.tmp")  # then renamed: a reader never sees it empty
    scratch.write_text(str(child.pid))
    scratch.replace(Path(directory, "grandchild"))
    time.sleep(3600)


class NeedsTwoArgs(Exception):
    """Pickles, but cannot be rebuilt: its __init__ does not take its own ``args``."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}-{b}")


def raise_needs_two_args() -> None:
    raise NeedsTwoArgs("left", "right")


def return_lock() -> threading.Lock:
    return threading.Lock()
