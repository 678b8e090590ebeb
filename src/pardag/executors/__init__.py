"""Where steps run. One small interface (``Executor``), one module per executor.

=============  ==========================================  ================================
name           runs                                        auto capacity (max_concurrency=0)
=============  ==========================================  ================================
``async``      ``async def`` functions, on the run's loop  unlimited
``threads``    plain functions (their default)             64 threads
``processes``  plain functions, CPU-bound (pickled: by    one worker per CPU core
               value when not importable)
``inline``     cheap built-in kinds, and plain functions   unlimited
               given ``executor="inline"``: called in the
               event loop's own thread, no hand-off
``dask``       plain functions, as tasks on a Dask         unlimited: the cluster queues
               cluster (``dask_address``, else a
               LocalCluster started for the run)
=============  ==========================================  ================================

``inline`` suits functions that take microseconds: a step on it blocks the event loop while
it runs, so nothing else moves, and a timeout cannot interrupt it. It is the one
``synchronous`` executor: its ``call`` returns the result with no future in between.

With ``max_concurrency=N`` every executor is sized to ``N`` (but ``inline``, which never runs
two calls at once) and the run never has more than ``N`` steps running in all.
"""

from __future__ import annotations

import os

from pardag.errors import ArgumentError
from pardag.executors.base import Executor
from pardag.executors.threads import DEFAULT_THREADS
from pardag.states import EXECUTORS, ExecutorName

__all__ = ["EXECUTORS", "Executor", "create_executor", "default_capacity"]


def default_capacity(name: str) -> int | None:
    """How many steps executor ``name`` runs at once when ``max_concurrency`` is 0 (auto)."""
    if name == ExecutorName.THREADS:
        return DEFAULT_THREADS
    if name == ExecutorName.PROCESSES:
        return os.cpu_count() or 1
    return None


def create_executor(
    name: str, max_workers: int | None, *, dask_address: str | None = None
) -> Executor:
    """A new executor ``name`` for one run; ``max_workers`` None means its auto capacity;
    ``dask_address`` is the scheduler the ``dask`` executor connects to (None: its own)."""
    if name == ExecutorName.ASYNC:
        from pardag.executors.coroutines import AsyncExecutor

        return AsyncExecutor(max_workers)
    if name == ExecutorName.THREADS:
        from pardag.executors.threads import ThreadExecutor

        return ThreadExecutor(max_workers)
    if name == ExecutorName.PROCESSES:
        from pardag.executors.processes import ProcessExecutor

        return ProcessExecutor(max_workers)
    if name == ExecutorName.INLINE:
        from pardag.executors.inline import InlineExecutor

        return InlineExecutor(max_workers)
    if name == ExecutorName.DASK:
        from pardag.executors.dask import DaskExecutor

        return DaskExecutor(max_workers, dask_address)
    raise ArgumentError(f"executor {name!r} is unknown; use one of {', '.join(EXECUTORS)}")
