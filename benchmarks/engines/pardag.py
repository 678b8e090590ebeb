"""pardag, through its public API only: ``Workflow``, ``add``, ``validate`` and ``run``.

Variants: ``async`` (``async def`` steps), ``threads`` (plain functions, the default thread
executor), ``inline`` (plain functions called in the event loop's thread, for the no-op
workloads), ``processes`` (plain importable functions on worker processes), the ``levels`` and
``sequential`` modes, and ``*-noest`` (no duration estimates: the dynamic order then counts
every step as 1). Elsewhere sleep steps declare their duration as ``estimate=``, the way a
user who knows them (or, later, the run history) tells pardag. ``map-*`` run W7 as a user
who maps writes it: a source step returning the items and one mapped step per stage
(``wf.add(stage, fn, map_over=...)``), on the executor their name ends with; the other
variants run W7's steps as added up front. ``dask*`` run on the dask benchmark's shared cluster
(``benchmarks/dask_cluster.py``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pardag
from benchmarks import dask_cluster, tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Step, Workload, stage_durations


async def _async_noop() -> None:
    return None


def _async_sleeper(duration: float) -> Callable[[], Any]:
    async def sleep() -> None:
        await asyncio.sleep(duration)

    return sleep


def _sleeper(duration: float) -> Callable[[], None]:
    def sleep() -> None:
        time.sleep(duration)

    return sleep


class Pardag(Engine):
    name = "pardag"
    variants: ClassVar[dict[str, str]] = {
        "async": "async def steps, dynamic mode",
        "threads": "plain functions on the thread executor, dynamic mode",
        "inline": "plain functions on the inline executor (called in the loop; no-op steps)",
        "processes": "plain importable functions on the process executor",
        "async-noest": "async def steps, dynamic mode, no duration estimates",
        "threads-noest": "plain functions, dynamic mode, no duration estimates",
        "levels": "async def steps, levels mode (a barrier per level)",
        "threads-levels": "plain functions, levels mode",
        "sequential": "async def steps, sequential mode",
        "builtin": "built-in node-graph kinds (number, visualization) on the inline executor",
        "durable": "plain functions on the inline executor, recorded in a SQLite run store",
        "map-inline": "W7 as mapped steps, plain functions on the inline executor",
        "map-threads": "W7 as mapped steps, plain functions on the thread executor",
        "map-async": "W7 as mapped steps, async def functions",
        "dask": "plain importable functions on the dask executor, on the shared cluster",
        "dask-feed": "as dask, counting the bytes the runner sends and receives",
    }

    def __init__(self, variant: str, cpu_rate: float) -> None:
        super().__init__(variant, cpu_rate)
        if variant == "dask-feed":
            dask_cluster.Traffic.install()

    def counters(self) -> dict[str, int]:
        return dask_cluster.Traffic.total() if self.variant == "dask-feed" else {}

    def version(self) -> str:
        return pardag.__version__

    def _body(self, step: Step) -> Callable[..., Any]:
        flavour = self.variant
        if flavour in ("processes", "dask", "dask-feed") or step.kind == "cpu":
            if step.kind == "cpu":
                return functools.partial(tasks.cpu_spin, self.iterations(step))
            if step.kind == "sleep":
                return functools.partial(tasks.sleep, step.duration)
            return tasks.noop
        if flavour.startswith("threads") or flavour in ("inline", "durable"):
            return tasks.noop if step.kind == "noop" else _sleeper(step.duration)
        return _async_noop if step.kind == "noop" else _async_sleeper(step.duration)

    def build(self, wl: Workload) -> pardag.Workflow:
        if self.variant == "builtin":
            return self._builtin(wl)
        if self.variant.startswith("map-"):
            return self._mapped(wl)
        wf = pardag.Workflow(wl.name)
        estimates = wl.kind == "sleep" and not self.variant.endswith("-noest")
        body, add = self._body, wf.add
        if estimates:
            for s in wl.steps:
                add(s.id, body(s), depends_on=s.deps, estimate=s.duration)
        else:
            for s in wl.steps:
                add(s.id, body(s), depends_on=s.deps)
        wf.validate()
        return wf

    def _builtin(self, wl: Workload) -> pardag.Workflow:
        """No-op workloads as built-in node kinds: a number at each root, then each step shows
        its first input (what a node graph of cheap nodes costs; W1, W2 and W5 only)."""
        if wl.kind != "noop":
            raise SystemExit("pardag builtin: the built-in kinds stand in for no-op steps only")
        wf = pardag.Workflow(wl.name)
        add, number, show = wf.add, {"value": 1}, {"mode": "number"}
        for s in wl.steps:
            if s.deps:
                add(s.id, kind="visualization", params=show, depends_on=s.deps)
            else:
                add(s.id, kind="number", params=number, depends_on=())
        wf.validate()
        return wf

    def _mapped(self, wl: Workload) -> pardag.Workflow:
        """W7 as mapped steps: ``src`` returns the item indexes, then each stage maps over the
        one before it (``p`` over ``src``; or ``a`` over ``src``, ``b`` over ``a``)."""
        if wl.name != "W7":
            raise SystemExit(f"pardag {self.variant}: the map variants run W7 only, not {wl.name}")
        stages = stage_durations(wl)
        wf = pardag.Workflow(wl.name)
        items = list(range(len(next(iter(stages.values())))))
        wf.add("src", lambda: items)
        over = "src"
        for stage, durations in stages.items():
            wf.add(stage, self._item_body(wl.kind, durations), map_over=over)
            over = stage
        wf.validate()
        return wf

    def _item_body(self, kind: str, durations: list[float]) -> Callable[..., Any]:
        if self.variant != "map-async":
            return tasks.item_body(kind, durations)

        async def sleep_item(k: int) -> int:
            if kind == "sleep":
                await asyncio.sleep(durations[k])
            return k

        return sleep_item

    def run(self, built: pardag.Workflow, wl: Workload) -> None:
        settings: dict[str, Any] = {"max_concurrency": wl.slots}
        if "levels" in self.variant:
            settings["mode"] = "levels"
        elif self.variant == "sequential":
            settings["mode"] = "sequential"
        if self.variant in ("processes", "inline", "map-inline"):
            settings["executor"] = self.variant.removeprefix("map-")
        if self.variant.startswith("dask"):
            settings.update(executor="dask", dask_address=dask_cluster.address())
        if self.variant == "durable":
            settings["executor"] = "inline"
            settings["store"] = os.path.join(tempfile.mkdtemp(prefix="pardag-bench-"), "runs.db")
        result = built.run(**settings)
        result.raise_for_status()


ENGINE = Pardag
