"""The ``inline`` executor: the call runs right away, in the event loop's own thread.

For steps of microseconds (the built-in node-graph kinds, conditions, merges): any hand-off
would cost more than the step. It is ``synchronous``: the runner calls ``call`` and gets the
result back with no future at all; ``submit``, built on ``call``, returns a future that is
already settled, for callers that treat every executor alike (the conformance suite).

A step on it blocks the loop while it runs, so nothing else moves, and a timeout cannot
interrupt it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pardag.executors.base import Executor, deliverable
from pardag.states import ExecutorName

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Runs each call inside ``submit`` (or ``call``), on the caller's thread; no workers."""

    name = ExecutorName.INLINE
    synchronous = True

    def __init__(self, max_workers: int | None = None) -> None:
        """``max_workers`` is accepted like every executor's and ignored: one call runs at a
        time, and it ends before ``submit`` returns, so it never holds a slot."""

    @property
    def capacity(self) -> int | None:
        return None

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
        except Exception as exc:  # KeyboardInterrupt, SystemExit: raised, as by a direct call
            future.set_exception(deliverable(exc))  # StopIteration cannot sit in a future
        return future

    def stop(self, future: asyncio.Future[Any]) -> bool:
        # The call ended inside submit, so there is nothing left to stop, and True would
        # promise a cancelled future: False says "not stopped, the future completes when the
        # work ends" (it already has), the contract of work that cannot be stopped.
        return False

    async def aclose(self) -> None:
        """Nothing to release: no call outlives its ``submit``."""
