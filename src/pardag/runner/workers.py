"""The executors of one run: made on first use, wired to the runner's hooks, closed at its end.

An executor that reports finished calls in batches (``reports_done``) gets the runner's
``on_reported`` as its ``notify`` hook; the thread executor also gets the chain hooks when the
run has chains. Which executors exist is ``pardag.executors``'s business; this only keeps one
of each name per run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pardag.executors import create_executor
from pardag.executors.base import Executor
from pardag.executors.threads import ThreadExecutor
from pardag.runner.chains import Follower

__all__ = ["Workers"]


class Workers:
    """One executor per name for a run; ``reporting`` names those that report in batches."""

    def __init__(
        self,
        max_concurrency: int,
        on_reported: Callable[[Sequence[asyncio.Future[Any]]], None],
        follower: Follower | None,
    ) -> None:
        self._limit = max_concurrency or None
        self._on_reported = on_reported
        self._follower = follower
        self._by_name: dict[str, Executor] = {}
        self.reporting: set[str] = set()

    def get(self, name: str) -> Executor:
        """Executor ``name`` of this run, made (and wired) the first time it is asked for."""
        ex = self._by_name.get(name)
        if ex is None:
            ex = self._by_name[name] = self._make(name)
        return ex

    def _make(self, name: str) -> Executor:
        ex = create_executor(name, self._limit)
        if ex.reports_done:
            self.reporting.add(name)
            ex.notify = self._on_reported
        if isinstance(ex, ThreadExecutor) and self._follower is not None:
            ex.follow, ex.on_follow = self._follower.follow, self._follower.on_follow
        return ex

    async def aclose(self) -> None:
        """Stop what still runs and release every worker."""
        for ex in self._by_name.values():
            await ex.aclose()
