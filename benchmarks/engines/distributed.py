"""``dask.distributed`` on a ``LocalCluster`` started once per process (and per slot count).

Variants: ``threads`` (one worker with one thread a slot, in this process; tasks submitted
one by one with ``client.submit``, dependencies passed as futures), ``procs`` (two worker
processes, slots split between them, same submission), ``threads-graph`` (the threads cluster
given the whole raw graph with ``client.get``), ``threads-async`` (``async def`` tasks,
which the workers run on their event loop), and ``cluster`` (the same submission, on the dask
benchmark's shared cluster, ``benchmarks/dask_cluster.py``; ``cluster-feed`` also counts the
client's bytes).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, ClassVar

import distributed
from distributed import Client, LocalCluster

from benchmarks import dask_cluster, tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Workload


class Distributed(Engine):
    name = "distributed"
    variants: ClassVar[dict[str, str]] = {
        "threads": "LocalCluster(processes=False), 1 worker x slots threads, client.submit",
        "procs": "LocalCluster, 2 worker processes x slots/2 threads, client.submit",
        "threads-graph": "LocalCluster(processes=False), the raw graph dict via client.get",
        "threads-async": "LocalCluster(processes=False), async def tasks, client.submit",
        "cluster": "the shared cluster (2 worker processes x 4 threads), client.submit",
        "cluster-feed": "as cluster, counting the bytes the client sends and receives",
    }

    def __init__(self, variant: str, cpu_rate: float) -> None:
        super().__init__(variant, cpu_rate)
        self.cluster: LocalCluster | None = None
        self.client: Client | None = None
        self.slots = 0
        self.counter = itertools.count()
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if variant == "cluster-feed":
            dask_cluster.Traffic.install()

    def counters(self) -> dict[str, int]:
        return dask_cluster.Traffic.total() if self.variant == "cluster-feed" else {}

    def version(self) -> str:
        return str(distributed.__version__)

    def setup(self, wl: Workload) -> None:
        shared = self.variant.startswith("cluster")  # one client, whatever the case's slots
        if self.client is not None and (shared or self.slots == wl.slots):
            return
        self.close()
        if shared:
            self.client = Client(dask_cluster.address())
            return
        self.slots = wl.slots
        if self.variant == "procs":
            self.cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=max(1, wl.slots // 2),
                processes=True,
                dashboard_address=None,
            )
        else:
            self.cluster = LocalCluster(
                n_workers=1, threads_per_worker=wl.slots, processes=False, dashboard_address=None
            )
        self.client = Client(self.cluster)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def call(self, s: Any) -> tuple[Any, ...]:
        """A step's task: its function and own arguments (the dependencies' futures follow)."""
        if s.kind == "noop":
            return (tasks.async_noop if self.variant == "threads-async" else tasks.noop_args,)
        if s.kind == "sleep":
            fn = tasks.async_sleep if self.variant == "threads-async" else tasks.sleep
            return (fn, s.duration)
        return (tasks.cpu_spin, self.iterations(s))

    def build(self, wl: Workload) -> Any:
        run = next(self.counter)
        if self.variant != "threads-graph":
            return run  # tasks are submitted in the timed run, as a user would
        key = {s.id: f"{s.id}-r{run}" for s in wl.steps}
        dsk = {key[s.id]: (*self.call(s), *(key[d] for d in s.deps)) for s in wl.steps}
        return dsk, [key[k] for k in wl.sinks()]

    def run(self, built: Any, wl: Workload) -> None:
        client = self.client
        assert client is not None
        if self.variant == "threads-graph":
            dsk, keys = built
            client.get(dsk, keys)
            return
        futures = self.submit(client, wl, f"r{built}")
        distributed.wait([futures[k] for k in wl.sinks()])
        for k in wl.sinks():
            futures[k].result()

    def submit(self, client: Client, wl: Workload, tag: str) -> dict[str, distributed.Future]:
        """Every step as one task, its dependencies' futures as arguments (so the scheduler
        holds the graph's edges); step ``s`` gets the key ``{s}-{tag}``."""
        futures: dict[str, distributed.Future] = {}
        for s in wl.steps:
            call = self.call(s)
            futures[s.id] = client.submit(
                *call, *(futures[d] for d in s.deps), key=f"{s.id}-{tag}", pure=False
            )
        return futures


ENGINE = Distributed
