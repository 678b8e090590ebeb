"""Module-level step functions for the executor tests.

The processes executor can only run importable functions, so every call the tests submit
lives here; ``*_async`` variants are the same calls for the async executor.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

WAIT_LIMIT = 10.0
"""Seconds a rendezvous waits for its partner before declaring the calls were not concurrent."""


def add(a: int, b: int = 0) -> int:
    return a + b


async def add_async(a: int, b: int = 0) -> int:
    await asyncio.sleep(0)
    return a + b


def echo(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    return args, kwargs


async def echo_async(
    *args: object, **kwargs: object
) -> tuple[tuple[object, ...], dict[str, object]]:
    await asyncio.sleep(0)
    return args, kwargs


def raise_value_error(message: str) -> None:
    raise ValueError(message)


async def raise_value_error_async(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


def rendezvous(directory: str, me: str, other: str) -> str:
    """Announce ``me`` and wait for ``other``: succeeds only if both calls run at once."""
    Path(directory, me).touch()
    deadline = time.monotonic() + WAIT_LIMIT
    while not Path(directory, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other!r} never started while {me!r} was running")
        time.sleep(0.005)
    return me


async def rendezvous_async(directory: str, me: str, other: str) -> str:
    Path(directory, me).touch()
    deadline = time.monotonic() + WAIT_LIMIT
    while not Path(directory, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other!r} never started while {me!r} was running")
        await asyncio.sleep(0.005)
    return me


def _mark(directory: str) -> None:
    """Write ``started`` holding the pid, atomically: a reader never sees it empty."""
    scratch = Path(directory, f"started.{os.getpid()}.tmp")
    scratch.write_text(str(os.getpid()))
    scratch.replace(Path(directory, "started"))


def mark_and_sleep(directory: str, seconds: float) -> str:
    """Write ``started`` (holding the pid), sleep, then write ``finished``."""
    _mark(directory)
    time.sleep(seconds)
    Path(directory, "finished").touch()
    return "finished"


async def mark_and_sleep_async(directory: str, seconds: float) -> str:
    _mark(directory)
    await asyncio.sleep(seconds)
    Path(directory, "finished").touch()
    return "finished"


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
    Path(directory, "grandchild").write_text(str(child.pid))
    time.sleep(3600)


class NeedsTwoArgs(Exception):
    """Pickles, but cannot be rebuilt: its __init__ does not take its own ``args``."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}-{b}")


def raise_needs_two_args() -> None:
    raise NeedsTwoArgs("left", "right")


def raise_stop_iteration() -> None:
    next(iter([]))


def return_lock() -> threading.Lock:
    return threading.Lock()
