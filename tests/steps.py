"""Module-level step functions for runner tests that use the processes executor.

Worker processes load a step's function by name, so it must live in an importable module.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def pid() -> int:
    return os.getpid()


def spin(path: str) -> None:
    """Write this process's pid to ``path``, then loop forever (only a kill stops it)."""
    scratch = Path(f"{path}.tmp")
    scratch.write_text(str(os.getpid()))
    scratch.replace(path)  # atomically: a reader never sees the file empty
    while True:
        time.sleep(0)


def fail_in_worker() -> None:
    raise ValueError("raised in a worker process")


def sleep_then_mark(path: str, seconds: float) -> str:
    """Sleep, then create ``path``: the file exists only if the call was not stopped."""
    time.sleep(seconds)
    Path(path).touch()
    return "finished"


def skip_in_worker() -> None:
    from pardag import StepSkipped

    raise StepSkipped("nothing new in the worker")


def print_lines() -> int:
    for n in range(3):
        print(f"line {n}")
    print("done", file=sys.stderr)
    return 3


def print_then_fail() -> None:
    print("about to fail")
    raise ValueError("bad")
