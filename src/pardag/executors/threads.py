"""The ``threads`` executor: plain functions on a pool of threads (their default).

A thread cannot be stopped from outside. When a step on a thread times out or is cancelled,
the run moves on, but the thread's slot is not handed out again until the function returns.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pardag.executors.base import Executor

__all__ = ["DEFAULT_THREADS", "ThreadExecutor"]

DEFAULT_THREADS = 64
"""Threads used when ``max_concurrency`` is 0 (auto): enough for I/O-bound steps."""


class ThreadExecutor(Executor):
    """Runs plain functions on threads, started lazily up to ``max_workers``."""

    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers or DEFAULT_THREADS
        self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="pardag-step")

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        call = functools.partial(_guarded, fn, args, kwargs)
        return asyncio.get_running_loop().run_in_executor(self._pool, call)

    def stop(self, future: asyncio.Future[Any]) -> bool:
        return False

    async def aclose(self) -> None:
        # Waits for running threads: a run does not return while its steps still run.
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)


def _guarded(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; a ``StopIteration`` would never reach an asyncio future, so wrap it."""
    try:
        return fn(*args, **kwargs)
    except StopIteration as exc:
        raise RuntimeError(f"the step raised StopIteration: {exc!r}") from exc
