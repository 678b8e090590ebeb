"""Ray on a local single-node instance started in this process (``ray.init``).

Variants: ``tasks`` (one remote function call a step, its dependencies passed as object
refs; the instance has as many CPUs as the largest slot count of the process's cases and each
task asks for ``that / slots`` of them, so at most ``slots`` run at once), ``actor-threads``
(one threaded actor with ``max_concurrency=slots``, a method call a step) and
``actor-async`` (one async actor, ``max_concurrency=slots``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, ClassVar

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray

from benchmarks import tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Workload


@ray.remote
def r_noop(*_deps: Any) -> None:
    return None


@ray.remote
def r_sleep(duration: float, *_deps: Any) -> None:
    time.sleep(duration)


@ray.remote
def r_cpu(iterations: int, *_deps: Any) -> int:
    return tasks.cpu_spin(iterations)


@ray.remote
class Threaded:
    def step(self, kind: str, arg: Any, *_deps: Any) -> Any:
        if kind == "sleep":
            time.sleep(arg)
        elif kind == "cpu":
            return tasks.cpu_spin(arg)
        return None


@ray.remote
class Async:
    async def step(self, kind: str, arg: Any, *_deps: Any) -> Any:
        if kind == "sleep":
            await asyncio.sleep(arg)
        elif kind == "cpu":
            return tasks.cpu_spin(arg)
        return None


class Ray(Engine):
    name = "ray"
    variants: ClassVar[dict[str, str]] = {
        "tasks": "remote functions, dependencies as ObjectRef arguments, num_cpus = slots",
        "actor-threads": "one threaded actor, max_concurrency = slots",
        "actor-async": "one async actor, max_concurrency = slots",
    }

    def __init__(self, variant: str, cpu_rate: float) -> None:
        super().__init__(variant, cpu_rate)
        self.cpus = int(os.environ.get("PARDAG_BENCH_RAY_CPUS", "0") or 0)
        self.actors: dict[int, Any] = {}

    def version(self) -> str:
        return str(ray.__version__)

    def setup(self, wl: Workload) -> None:
        if not ray.is_initialized():
            if self.variant != "tasks":
                self.cpus = 2  # actors need one CPU to be placed; their threads are their own
            ray.init(
                num_cpus=max(self.cpus, wl.slots) if self.variant == "tasks" else self.cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
            if self.variant == "tasks":
                self.cpus = max(self.cpus, wl.slots)
        if self.variant != "tasks" and wl.slots not in self.actors:
            cls = Threaded if self.variant == "actor-threads" else Async
            self.actors[wl.slots] = cls.options(max_concurrency=wl.slots).remote()

    def _arg(self, s: Any) -> Any:
        if s.kind == "sleep":
            return s.duration
        return self.iterations(s) if s.kind == "cpu" else None

    def build(self, wl: Workload) -> Any:
        return None  # refs are made by calling remote functions in the timed run

    def run(self, built: Any, wl: Workload) -> None:
        refs: dict[str, Any] = {}
        if self.variant == "tasks":
            share = self.cpus / wl.slots
            fns = {
                "noop": r_noop.options(num_cpus=share),
                "sleep": r_sleep.options(num_cpus=share),
                "cpu": r_cpu.options(num_cpus=share),
            }
            for s in wl.steps:
                deps = [refs[d] for d in s.deps]
                fn = fns[s.kind]
                refs[s.id] = (
                    fn.remote(*deps) if s.kind == "noop" else fn.remote(self._arg(s), *deps)
                )
        else:
            actor = self.actors[wl.slots]
            for s in wl.steps:
                deps = [refs[d] for d in s.deps]
                refs[s.id] = actor.step.remote(s.kind, self._arg(s), *deps)
        ray.get([refs[k] for k in wl.sinks()])

    def close(self) -> None:
        if ray.is_initialized():
            ray.shutdown()


ENGINE = Ray
