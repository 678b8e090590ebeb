"""The ``inline`` executor: the call runs right away, in the event loop's own thread.

For functions that take microseconds (the built-in node-graph kinds): no hand-off to a thread
costs more than they do. A step on it blocks the event loop while it runs, so nothing else
moves, and a timeout cannot interrupt it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pardag.executors.base import Executor

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Runs each call inside ``submit``/``call``; it has no capacity of its own."""

    name = "inline"
    synchronous = True

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return fn(*args, **kwargs)

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(self.call(fn, args, kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def stop(self, future: asyncio.Future[Any]) -> bool:
        return True  # nothing is left to stop: the call finished inside submit

    async def aclose(self) -> None:
        return None
