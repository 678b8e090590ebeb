"""The ``async`` executor: coroutine functions run as tasks on the run's own event loop.

Each call runs inside a small wrapper coroutine that settles the call's future itself and
reports it through ``notify`` the moment it finishes, so a finished step costs no extra turn of
the event loop for done-callbacks. Cancelling the task really stops the coroutine.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from pardag.executors.base import Executor
from pardag.states import ExecutorName

__all__ = ["AsyncExecutor"]


class AsyncExecutor(Executor):
    """Runs coroutine functions on the event loop; cancelling the task really stops them."""

    name = ExecutorName.ASYNC
    reports_done = True

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers
        self._tasks: dict[asyncio.Future[Any], tuple[asyncio.Task[None], Coroutine[Any, Any, Any]]]
        self._tasks = {}

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        coro = fn(*args, **kwargs)
        if not asyncio.iscoroutine(coro):
            raise TypeError(f"{fn!r} did not return a coroutine; is it an async def function?")
        self._tasks[future] = (loop.create_task(self._run(coro, future)), coro)
        return future

    async def _run(self, coro: Coroutine[Any, Any, Any], future: asyncio.Future[Any]) -> None:
        """Await the step, settle its future, report it; this wrapper is the task's body."""
        try:
            value = await coro
        except asyncio.CancelledError:
            self._finish(future, None, cancelled=True)
            raise
        except BaseException as exc:
            self._finish(future, exc)
            if not isinstance(exc, Exception):
                raise  # SystemExit and KeyboardInterrupt keep their meaning
        else:
            self._finish(future, None, value=value)

    def _finish(
        self,
        future: asyncio.Future[Any],
        exc: BaseException | None,
        *,
        value: Any = None,
        cancelled: bool = False,
    ) -> None:
        del self._tasks[future]
        if future.done():
            return
        if cancelled:
            future.cancel()
        elif exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
        if self.notify is not None:
            self.notify((future,))

    def stop(self, future: asyncio.Future[Any]) -> bool:
        entry = self._tasks.get(future)
        if entry is None:
            return True
        task, coro = entry
        task.cancel()
        if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            coro.close()  # cancelled before its first line: it will never run, settle it here
            self._finish(future, None, cancelled=True)
        return True

    async def aclose(self) -> None:
        entries = list(self._tasks.items())
        for future, _ in entries:
            self.stop(future)
        if entries:
            await asyncio.gather(*(task for _, (task, _) in entries), return_exceptions=True)
