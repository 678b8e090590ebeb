"""What a Dask worker runs for the ``dask`` executor: one call, its inputs filled in there.

The runner pickles ``(fn, args, kwargs)`` itself (``pardag.executors.payload``); an input that
another step left on the cluster is not in that pickle but a ``Slot``, and its Dask future is
an argument of the task, so Dask moves the data worker to worker and fills it in here.

Before calling, the worker announces the start on the run's Dask event topic when asked to
(the runner's ``step_started`` then carries the worker's own start time and address, not the
time of submission).
"""

from __future__ import annotations

import pickle
import time
from typing import Any, NamedTuple

from pardag.executors.base import deliverable
from pardag.steplog import Logged

__all__ = ["Slot", "run_call", "summary"]


class Slot(NamedTuple):
    """Where, in a call's arguments, the value of the task's ``n``-th future goes."""

    n: int


def run_call(
    payload: bytes, announce: tuple[str, str] | None, stop: str | None, *values: Any
) -> Any:
    """On a worker: unpickle ``(fn, args, kwargs)``, fill its slots with ``values`` (what
    Dask brought from the steps that made them), announce the start (``announce``: the Dask
    event topic and the call's key), call it: here, or with ``stop`` (the name of the Dask
    ``Event`` that cancels it) in a subprocess (``dask_isolation``). An exception
    that cannot travel in a future (``StopIteration``, ``SystemExit``) comes back as a
    RuntimeError."""
    fn, args, kwargs = pickle.loads(payload)
    if values:
        plain = [v.value if isinstance(v, Logged) else v for v in values]
        args, kwargs = _filled(args, plain), _filled(kwargs, plain)
    if announce is not None:
        _announce(*announce)
    if stop is not None:
        from pardag.executors.dask_isolation import run_isolated

        return run_isolated(fn, args, kwargs, stop)
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        wrapped = deliverable(exc)
        if wrapped is exc:
            raise
        raise wrapped from None


def summary(result: Any) -> tuple[str, int, Any, int]:
    """On the worker that holds a kept output: its type, its size as Dask counts it, and the
    log its call wrote (sent back in place of the value)."""
    from dask.sizeof import sizeof

    value, pieces, dropped = (
        (result.value, result.pieces, result.dropped)
        if isinstance(result, Logged)
        else (result, None, 0)
    )
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return module + kind.__qualname__, int(sizeof(value)), pieces, dropped


def _filled(where: Any, values: list[Any]) -> Any:
    """``where`` (a call's args or kwargs, one level of containers deep) with slots filled."""
    if isinstance(where, Slot):
        return values[where.n]
    if isinstance(where, tuple) and not hasattr(where, "_fields"):
        return tuple(_filled_one(v, values) for v in where)
    if isinstance(where, dict):
        return {k: _filled_one(v, values) for k, v in where.items()}
    return where


def _filled_one(value: Any, values: list[Any]) -> Any:
    if isinstance(value, Slot):
        return values[value.n]
    if isinstance(value, dict):
        return {k: values[v.n] if isinstance(v, Slot) else v for k, v in value.items()}
    return value


def _announce(topic: str, key: str) -> None:
    """Tell the runner (through the scheduler) that the call ``key`` starts now, here."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker (a test calling it directly)
        return
    worker.log_event(topic, {"key": key, "at": time.time(), "worker": worker.address})
