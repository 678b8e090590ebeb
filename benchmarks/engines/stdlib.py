"""The hand-written standard-library loops a user would write instead of an engine.

- ``dynamic`` (also reported as ``threads``, and ``processes`` for W6): a
  ``graphlib.TopologicalSorter`` fed by a ``ThreadPoolExecutor`` (``ProcessPoolExecutor``):
  submit every ready node, wait for the first to finish, mark it done, repeat;
- ``barrier``: the same sorter run level by level: submit everything ready, wait for all of it;
- ``asyncio``: one task per step awaiting its dependencies' tasks, under a semaphore;
- ``map`` (W7 only): the item list through ``ThreadPoolExecutor.map``, one stage after the
  other (for W7's chain: all of a, then all of b).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from graphlib import TopologicalSorter
from typing import Any, ClassVar

from benchmarks import tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Workload, stage_durations


class Stdlib(Engine):
    name = "stdlib"
    variants: ClassVar[dict[str, str]] = {
        "dynamic": "graphlib.TopologicalSorter + ThreadPoolExecutor, wait(FIRST_COMPLETED)",
        "threads": "the dynamic loop (named so on the I/O and CPU workloads)",
        "processes": "the dynamic loop on a ProcessPoolExecutor",
        "barrier": "TopologicalSorter level by level on a ThreadPoolExecutor",
        "asyncio": "asyncio tasks awaiting their dependencies, under a Semaphore",
        "map": "ThreadPoolExecutor.map over W7's items, a stage at a time",
    }

    def version(self) -> str:
        return sys.version.split()[0]

    def build(self, wl: Workload) -> Any:
        if self.variant == "asyncio":
            return None  # the tasks are made as the run goes
        if self.variant == "map":  # the number of items, then a body per stage
            stages = list(stage_durations(wl).values())
            bodies = [tasks.item_body(wl.kind, durations) for durations in stages]
            return len(stages[0]), bodies
        sorter: TopologicalSorter[str] = TopologicalSorter()
        fns: dict[str, Callable[[], Any]] = {}
        for s in wl.steps:
            sorter.add(s.id, *s.deps)
            if s.kind == "noop":
                fns[s.id] = tasks.noop
            elif s.kind == "sleep":
                fns[s.id] = functools.partial(time.sleep, s.duration)
            else:
                fns[s.id] = functools.partial(tasks.cpu_spin, self.iterations(s))
        return sorter, fns

    def run(self, built: Any, wl: Workload) -> None:
        if self.variant == "asyncio":
            asyncio.run(_asyncio(wl))
            return
        if self.variant == "map":
            n, bodies = built
            items = list(range(n))
            with ThreadPoolExecutor(max_workers=wl.slots) as threads:
                for body in bodies:
                    items = list(threads.map(body, items))
            return
        sorter, fns = built
        pool: Executor
        if self.variant == "processes":
            pool = ProcessPoolExecutor(max_workers=wl.slots)
        else:
            pool = ThreadPoolExecutor(max_workers=wl.slots)
        with pool:
            if self.variant == "barrier":
                _barrier(sorter, fns, pool)
            else:
                _dynamic(sorter, fns, pool)


def _dynamic(sorter: TopologicalSorter[str], fns: dict[str, Any], pool: Executor) -> None:
    sorter.prepare()
    running: dict[Future[Any], str] = {}
    while sorter.is_active():
        for node in sorter.get_ready():
            running[pool.submit(fns[node])] = node
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            fut.result()
            sorter.done(running.pop(fut))


def _barrier(sorter: TopologicalSorter[str], fns: dict[str, Any], pool: Executor) -> None:
    sorter.prepare()
    while sorter.is_active():
        level = sorter.get_ready()
        for fut in [pool.submit(fns[node]) for node in level]:
            fut.result()
        sorter.done(*level)


async def _asyncio(wl: Workload) -> None:
    limit = asyncio.Semaphore(wl.slots)
    running: dict[str, asyncio.Task[None]] = {}

    async def step(kind: str, duration: float, deps: list[asyncio.Task[None]]) -> None:
        if deps:
            await asyncio.gather(*deps)
        async with limit:
            if kind == "sleep":
                await asyncio.sleep(duration)

    for s in wl.steps:
        running[s.id] = asyncio.create_task(step(s.kind, s.duration, [running[d] for d in s.deps]))
    await asyncio.gather(*running.values())


ENGINE = Stdlib
