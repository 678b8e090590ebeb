"""The executors of one run, and how their results come back to the runner.

One executor per name, made on first use and closed at the run's end. ``submit`` hands a call
to its executor and arranges for its end to reach the runner's inbox as an ``Ended`` message:
through the executor's batched ``notify`` hook when it has one (``reports_done``: one pump
per batch instead of a done-callback per call), else a done-callback.
A call captured for a worker process (``steplog.InWorker``) comes back through
``steplog.unwrap``, which puts its log in place before the runner sees the result.
An executor that ``chains`` gets the chain hooks (``follower``) when the run has chains; one
that shows calls to a cluster (``labels``) gets ``Labels``: each call's task key and priority,
how many dependents there take its output, whether the output stays there, and whether a
worker announces its start (then the step's ``step_started`` comes from ``Workers.started``,
with the worker's time, not from the runner at submission).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pardag.events import EventKind
from pardag.executors import create_executor
from pardag.executors.base import Executor, Label
from pardag.instances import instance_parent
from pardag.model import Graph, Step
from pardag.runner.chains import Follower
from pardag.runner.events import Announcer
from pardag.runner.plan import Plan
from pardag.runner.records import RunRecords
from pardag.runner.state import Ended, Message, RunState
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
        self._takers, self._keep = _takers(plan), [False] * n
        if plan.settings.keep_outputs_on_cluster:
            self._keep = [_keepable(plan, i, self._takers[i]) for i in range(n)]
        self.announces = plan.exact_events
        """Whether workers announce when they start a call (someone takes every event)."""

    def __call__(self, i: int) -> Label:
        sid, attempt = self._ids[i], self._attempts[i]
        declared = i < len(self._priority)
        if declared:
            priority = self._priority[i]
        else:  # a map's instance: its mapped step's place
            parent = instance_parent(sid, self._index)
            priority = self._priority[self._index[parent]] if parent is not None else 0
        key = f"pardag-{self._run_id}-{sid}-{attempt}"
        what = f"step {sid!r} (attempt {attempt}, task {key!r})"
        wants = self._steps[i].resources  # those that are no pool are Dask worker resources
        others = {k: v for k, v in wants.items() if k not in self._pools} if wants else None
        takers = len(self._takers[i]) if declared else 0
        keep = self._keep[i] if declared else False
        isolate = self._steps[i].isolation is not None
        return Label(key, what, priority, others or None, takers, keep, self.announces, isolate)


def _takers(plan: Plan) -> list[list[int]]:
    """Each step's dependents on ``dask`` that take its output as an argument (plain
    functions, not mapped over it): its Dask future is held for them."""
    graph, on, dask = plan.graph, plan.executor_of, ExecutorName.DASK
    out: list[list[int]] = [[] for _ in graph.ids]
    for i, succs in enumerate(graph.succs):
        if on[i] == dask and graph.steps[i].map_over is None:
            out[i] = [s for s in succs if on[s] == dask and _takes_whole(graph.steps[s])]
    return out


def _takes_whole(step: Step) -> bool:
    return step.fn is not None and step.map_over is None


def _keepable(plan: Plan, i: int, takers: list[int]) -> bool:
    """Whether nothing in the runner reads step ``i``'s output, so that it may stay on the
    cluster: every dependent takes it on the cluster, none through a ``when`` or a cache
    key, and the step is no condition, no cached step and no sink (the run's result)."""
    graph: Graph = plan.graph
    step, succs = graph.steps[i], graph.succs[i]
    if not takers or len(takers) != len(succs) or plan.actions[i].handle is not None:
        return False
    if step.cache is not None or step.map_over is not None:
        return False
    return all(graph.steps[s].when is None and graph.steps[s].cache is None for s in takers)


class Workers:
    """The executors of a run; ``reported`` maps each batch-reported call to its step."""

    def __init__(
        self,
        plan: Plan,
        state: RunState,
        run_id: str,
        inbox: deque[Message],
        pump: Callable[[], None],
        events: Announcer,
        records: RunRecords | None,
    ) -> None:
        s, attempts = plan.settings, state.attempts
        self._state, self._events, self._records = state, events, records
        self._unannounced: set[int] = set()  # dask steps whose worker has not said it started
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
        if ex.labels and self.labels is not None and self.labels.announces:
            self._unannounced.add(i)
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
            ex.on_start = self.started
        return ex

    def started(self, i: int, at: float, worker: str) -> None:
        """A worker started step ``i``'s attempt ``at`` (its clock): its start, announced."""
        if i not in self._unannounced:
            return
        self._unannounced.discard(i)
        if self._state.attempts[i] == 1:
            self._state.started[i] = at
        if self._records is not None:
            self._records.began(i, at)
        self._events.emit(EventKind.STEP_STARTED, i, worker=worker)

    def _on_done(self, i: int, fut: asyncio.Future[Any]) -> None:
        """A done-callback: the future of step ``i``'s attempt completed."""
        if i in self._unannounced:  # no word from a worker: it ended first, or never began
            self._unannounced.discard(i)
            if not fut.cancelled():
                self._events.emit(EventKind.STEP_STARTED, i)
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
