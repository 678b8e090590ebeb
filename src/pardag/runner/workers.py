"""The executors of one run, and how their results come back to the runner.

One executor per name, made on first use and closed at the run's end. ``submit`` hands a call
to its executor and arranges for its end to reach the runner's inbox as an ``Ended`` message:
through the executor's batched ``notify`` hook when it has one (``reports_done``: one pump
per batch instead of a done-callback per call), else a done-callback.
A call captured for a worker process (``steplog.InWorker``) comes back through
``steplog.unwrap``, which puts its log in place before the runner sees the result.
An executor that ``chains`` gets the chain hooks (``follower``) when the run has chains; one
that shows calls to a cluster (``labels``) gets ``Labels``: each call's task key and priority.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pardag.executors import create_executor
from pardag.executors.base import Executor, Label
from pardag.instances import instance_parent
from pardag.runner.chains import Follower
from pardag.runner.plan import Plan
from pardag.runner.state import Ended, Message
from pardag.states import ExecutorName, Mode
from pardag.steplog import InWorker, unwrap

__all__ = ["Labels", "Workers"]


class Labels:
    """Step ``i``'s call as a cluster sees it: ``pardag-{run}-{step}-{attempt}`` (unique to
    the run and the attempt, so two runs on one cluster never share a key) and a priority
    that keeps pardag's ready order (``pardag.scheduler``: priority, then critical path)."""

    def __init__(self, run_id: str, plan: Plan, attempts: list[int]) -> None:
        graph, self._pools = plan.graph, plan.settings.pools
        self._run_id, self._ids, self._attempts = run_id, graph.ids, attempts
        self._steps, self._index = graph.steps, graph.index  # a map adds its instances
        n = len(graph.ids)
        mode, durations = plan.settings.mode, plan.durations
        if mode is Mode.LEVELS:
            level = graph.levels()
            order = sorted(range(n), key=lambda i: (level[i], graph.ids[i]))
        else:
            rank = graph.upward_rank(durations)
            order = sorted(range(n), key=lambda i: (-graph.steps[i].priority, -rank[i], i))
        self._priority = [0] * n
        for place, i in enumerate(order):
            self._priority[i] = n - place  # Dask runs the highest first

    def __call__(self, i: int) -> Label:
        sid, attempt = self._ids[i], self._attempts[i]
        if i < len(self._priority):
            priority = self._priority[i]
        else:  # a map's instance: its mapped step's place
            parent = instance_parent(sid, self._index)
            priority = self._priority[self._index[parent]] if parent is not None else 0
        key = f"pardag-{self._run_id}-{sid}-{attempt}"
        what = f"step {sid!r} (attempt {attempt}, task {key!r})"
        wants = self._steps[i].resources  # those that are no pool are Dask worker resources
        others = {k: v for k, v in wants.items() if k not in self._pools} if wants else None
        return Label(key, what, priority, others or None)


class Workers:
    """The executors of a run; ``reported`` maps each batch-reported call to its step."""

    def __init__(
        self,
        plan: Plan,
        attempts: list[int],
        run_id: str,
        inbox: deque[Message],
        pump: Callable[[], None],
    ) -> None:
        s = plan.settings
        self._limit = s.max_concurrency or None
        self._dask_address = s.dask_address
        self._inbox, self._pump = inbox, pump
        self._by_name: dict[str, Executor] = {}
        self._reporting: set[str] = set()
        self.reported: dict[asyncio.Future[Any], int] = {}
        self.follower: Follower | None = None
        """Set before the first step starts, when the run has chains."""
        self.labels: Labels | None = None
        """For executors that show calls to a cluster (``dask``): keys and priorities."""
        if ExecutorName.DASK in plan.executor_of:
            self.labels = Labels(run_id, plan, attempts)

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
        ex = create_executor(name, self._limit, dask_address=self._dask_address)
        if ex.reports_done:
            self._reporting.add(ex.name)
            ex.notify = self._on_reported
        if ex.chains and self.follower is not None:
            ex.follow, ex.on_follow = self.follower.follow, self.follower.on_follow
        if ex.labels and self.labels is not None:
            ex.label = self.labels
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
