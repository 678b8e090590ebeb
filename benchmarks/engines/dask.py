"""Dask's local schedulers on raw task-graph dicts: ``{key: (function, *dependency keys)}``.

Variants: ``sync`` (``dask.local.get_sync``), ``threads`` (``dask.threaded.get`` with one
worker thread a slot), ``processes`` (``dask.multiprocessing.get``, its default chunking) and
``processes-chunk1`` (``chunksize=1``: one task a round trip). Asked for the sinks' keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

import dask
import dask.local
import dask.multiprocessing
import dask.threaded

from benchmarks import tasks
from benchmarks.harness import Engine
from benchmarks.workloads import Workload


def graph(wl: Workload, engine: Engine) -> dict[str, Any]:
    """The workload as a raw Dask graph: each task gets its dependencies' outputs."""
    dsk: dict[str, Any] = {}
    for s in wl.steps:
        if s.kind == "noop":
            dsk[s.id] = (tasks.noop_args, *s.deps)
        elif s.kind == "sleep":
            dsk[s.id] = (tasks.sleep, s.duration, *s.deps)
        else:
            dsk[s.id] = (tasks.cpu_spin, engine.iterations(s), *s.deps)
    return dsk


class Dask(Engine):
    name = "dask"
    variants: ClassVar[dict[str, str]] = {
        "sync": "dask.local.get_sync",
        "threads": "dask.threaded.get, num_workers = slots",
        "processes": "dask.multiprocessing.get, num_workers = slots, default chunksize",
        "processes-chunk1": "dask.multiprocessing.get, chunksize=1",
    }

    def version(self) -> str:
        return str(dask.__version__)

    def build(self, wl: Workload) -> Any:
        return graph(wl, self), wl.sinks()

    def run(self, built: Any, wl: Workload) -> None:
        dsk, keys = built
        if self.variant == "sync":
            dask.local.get_sync(dsk, keys)
        elif self.variant == "threads":
            dask.threaded.get(dsk, keys, num_workers=wl.slots)
        elif self.variant == "processes":
            dask.multiprocessing.get(dsk, keys, num_workers=wl.slots)
        else:
            dask.multiprocessing.get(dsk, keys, num_workers=wl.slots, chunksize=1)


ENGINE = Dask
