"""The executors of one run, and how their results come back to the runner.

One executor per name, made on first use and closed at the run's end. ``submit`` hands a call
to its executor and arranges for its end to reach the runner's inbox as an ``Ended`` message:
through the executor's batched ``notify`` hook when it has one (``reports_done``: one pump
per batch instead of a done-callback per call), else a done-callback.
A call captured for a worker process (``steplog.InWorker``) comes back through
``steplog.unwrap``, which puts its log in place before the runner sees the result.
An executor that ``chains`` gets the chain hooks (``follower``) when the run has chains.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pardag.executors import create_executor
from pardag.executors.base import Executor
from pardag.runner.chains import Follower
from pardag.runner.state import Ended, Message
from pardag.steplog import InWorker, unwrap

__all__ = ["Workers"]


class Workers:
    """The executors of a run; ``reported`` maps each batch-reported call to its step."""

    def __init__(
        self, max_concurrency: int, inbox: deque[Message], pump: Callable[[], None]
    ) -> None:
        self._limit = max_concurrency or None
        self._inbox, self._pump = inbox, pump
        self._by_name: dict[str, Executor] = {}
        self._reporting: set[str] = set()
        self.reported: dict[asyncio.Future[Any], int] = {}
        self.follower: Follower | None = None
        """Set before the first step starts, when the run has chains."""

    def get(self, name: str) -> Executor:
        """Executor ``name`` of this run, made (and wired) the first time it is asked for."""
        ex = self._by_name.get(name)
        if ex is None:
            ex = self._by_name[name] = self._make(name)
        return ex

    def submit(
        self,
        ex: Executor,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        i: int,
    ) -> asyncio.Future[Any]:
        """Start step ``i``'s call on ``ex``; its end will reach the inbox as ``Ended``."""
        fut = ex.submit(fn, args, kwargs, i)
        if type(fn) is InWorker:
            fut = unwrap(fut, fn.log)
        if fut.done():  # an executor that refused the call at once: the pump settles it next
            self._inbox.append(Ended(i, fut))
        elif ex.name in self._reporting:
            self.reported[fut] = i
        else:
            fut.add_done_callback(functools.partial(self._on_done, i))
        return fut

    async def aclose(self) -> None:
        """Stop what still runs and release every worker."""
        for ex in self._by_name.values():
            await ex.aclose()

    def _make(self, name: str) -> Executor:
        ex = create_executor(name, self._limit)
        if ex.reports_done:
            self._reporting.add(ex.name)
            ex.notify = self._on_reported
        if ex.chains and self.follower is not None:
            ex.follow, ex.on_follow = self.follower.follow, self.follower.on_follow
        return ex

    def _on_done(self, i: int, fut: asyncio.Future[Any]) -> None:
        """A done-callback: the future of step ``i``'s attempt completed."""
        self._inbox.append(Ended(i, fut))
        self._pump()

    def _on_reported(self, futures: Sequence[asyncio.Future[Any]]) -> None:
        """An executor settled ``futures`` (on the loop): deliver them, then pump once."""
        reported, inbox = self.reported, self._inbox
        for fut in futures:
            i = reported.pop(fut, None)
            if i is not None:
                inbox.append(Ended(i, fut))
        self._pump()
