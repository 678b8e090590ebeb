"""The ``async`` executor: coroutine functions run as tasks on the run's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pardag.executors.base import Executor

__all__ = ["AsyncExecutor"]


class AsyncExecutor(Executor):
    """Runs coroutine functions on the event loop; cancelling the task really stops them."""

    name = "async"

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(fn(*args, **kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stop(self, future: asyncio.Future[Any]) -> bool:
        future.cancel()
        return True

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
