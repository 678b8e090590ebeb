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
        self._prune_at = 64

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(fn(*args, **kwargs))
        tasks = self._tasks
        tasks.add(task)
        if len(tasks) > self._prune_at:  # forget finished tasks now and then, not per task
            self._tasks = tasks = {t for t in tasks if not t.done()}
            self._prune_at = max(64, 2 * len(tasks))
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
