"""The step functions the executor conformance suite submits.

They live in a module of their own, importable without pytest, because a worker process (the
``processes`` executor, or yours) imports a function's module to run it. Each ``*_async``
variant is the same call for executors that run coroutine functions.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

__all__ = [
    "WAIT_LIMIT",
    "add",
    "add_async",
    "echo",
    "echo_async",
    "mark_and_sleep",
    "mark_and_sleep_async",
    "raise_stop_iteration",
    "raise_stop_iteration_async",
    "raise_system_exit",
    "raise_value_error",
    "raise_value_error_async",
    "rendezvous",
    "rendezvous_async",
    "thread_id",
]

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


def raise_stop_iteration() -> None:
    next(iter([]))


async def raise_stop_iteration_async() -> None:
    await asyncio.sleep(0)
    next(iter([]))


def raise_system_exit(code: int) -> None:
    raise SystemExit(code)


def thread_id() -> int:
    return threading.get_ident()


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
