"""Prefect 3: a ``@flow`` that submits one ``@task`` a step, dependencies as ``wait_for``.

Runs against Prefect's ephemeral local server (started in this process on first use) with
``PREFECT_HOME`` in a temporary directory and analytics off. Variants: ``threads``
(``ThreadPoolTaskRunner(max_workers=slots)``, ``task.submit(..., wait_for=[...])``),
``processes`` (``ProcessPoolTaskRunner``) and ``async`` (an async flow awaiting async tasks,
each after its dependencies, under a semaphore of ``slots``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

if "PREFECT_HOME" not in os.environ or os.environ.get("PARDAG_BENCH_PREFECT_HOME") != "keep":
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="pardag-bench-prefect-")
    os.environ["PARDAG_BENCH_PREFECT_HOME"] = "keep"  # worker processes share this one
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import asyncio
import time
from typing import Any, ClassVar

import prefect
from prefect import flow, task
from prefect.futures import wait
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from benchmarks import tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Workload


@task
def p_noop() -> None:
    return None


@task
def p_sleep(duration: float) -> None:
    time.sleep(duration)


@task
def p_cpu(iterations: int) -> int:
    return tasks.cpu_spin(iterations)


@task
async def p_async_noop() -> None:
    return None


@task
async def p_async_sleep(duration: float) -> None:
    await asyncio.sleep(duration)


class Prefect(Engine):
    name = "prefect"
    variants: ClassVar[dict[str, str]] = {
        "threads": "@flow(task_runner=ThreadPoolTaskRunner(slots)), task.submit(wait_for=...)",
        "processes": "@flow(task_runner=ProcessPoolTaskRunner(slots)), task.submit(wait_for=...)",
        "async": "async @flow awaiting async @tasks after their dependencies, semaphore(slots)",
    }

    def version(self) -> str:
        return str(prefect.__version__)

    def build(self, wl: Workload) -> Any:
        return None  # the flow builds its graph as it runs, as a Prefect user's flow does

    def run(self, built: Any, wl: Workload) -> None:
        if self.variant == "async":
            asyncio.run(self._async_flow(wl)())
            return
        runner: Any
        if self.variant == "processes":
            runner = ProcessPoolTaskRunner(max_workers=wl.slots)
        else:
            runner = ThreadPoolTaskRunner(max_workers=wl.slots)
        engine = self

        @flow(name=f"bench-{wl.name}", task_runner=runner, validate_parameters=False)
        def dag() -> None:
            futures: dict[str, Any] = {}
            for s in wl.steps:
                after = [futures[d] for d in s.deps]
                if s.kind == "noop":
                    futures[s.id] = p_noop.submit(wait_for=after)
                elif s.kind == "sleep":
                    futures[s.id] = p_sleep.submit(s.duration, wait_for=after)
                else:
                    futures[s.id] = p_cpu.submit(engine.iterations(s), wait_for=after)
            sinks = [futures[k] for k in wl.sinks()]
            wait(sinks)
            for f in sinks:
                f.result()

        dag()

    def _async_flow(self, wl: Workload) -> Any:
        @flow(name=f"bench-{wl.name}-async", validate_parameters=False)
        async def dag() -> None:
            limit = asyncio.Semaphore(wl.slots)
            running: dict[str, asyncio.Task[Any]] = {}

            async def step(kind: str, duration: float, deps: list[asyncio.Task[Any]]) -> None:
                if deps:
                    await asyncio.gather(*deps)
                async with limit:
                    if kind == "sleep":
                        await p_async_sleep(duration)
                    else:
                        await p_async_noop()

            for s in wl.steps:
                running[s.id] = asyncio.create_task(
                    step(s.kind, s.duration, [running[d] for d in s.deps])
                )
            await asyncio.gather(*running.values())

        return dag

    def close(self) -> None:
        try:  # the ephemeral server is a uvicorn subprocess; stop it before we go
            from prefect.server.api.server import SubprocessASGIServer

            for server in list(SubprocessASGIServer._instances.values()):
                server.stop()
        except Exception:
            pass
        home = os.environ.get("PREFECT_HOME", "")
        if "pardag-bench-prefect-" in home:
            shutil.rmtree(home, ignore_errors=True)


ENGINE = Prefect
