"""What a Dask worker runs for the ``dask`` executor: one call, its inputs filled in there.

The runner pickles ``(fn, args, kwargs)`` itself (``pardag.executors.payload``); an input that
another step left on the cluster is not in that pickle but a ``Slot``, and its Dask future is
an argument of the task, so Dask moves the data worker to worker and fills it in here.

The worker talks back on the run's Dask event topic (``Talk``): before calling, it announces
the start when asked to (the runner's ``step_started`` then carries the worker's own start time
and address, not the time of submission); after, it sends a small result (``SMALL`` bytes
pickled at most) with its end, sparing the runner the round trip of fetching it.
"""

from __future__ import annotations

import pickle
import time
from typing import Any, NamedTuple

from pardag.executors.base import deliverable
from pardag.steplog import Logged

__all__ = ["SMALL", "Slot", "Talk", "run_call", "summary"]

SMALL = 1024
"""The largest result, pickled, that a worker sends on the run's topic (the scheduler keeps
a topic's latest messages, ``distributed.admin.low-level-log-length`` of them, until the run
drops the topic: only small ones go that way)."""


class Talk(NamedTuple):
    """How a worker talks back to the runner about one call, on the run's Dask event topic."""

    topic: str
    key: str
    start: bool  # announce the start
    result: bool  # send a small result


class Slot(NamedTuple):
    """Where, in a call's arguments, the value of the task's ``n``-th future goes."""

    n: int


def run_call(payload: bytes, talk: Talk | None, stop: str | None, *values: Any) -> Any:
    """On a worker: unpickle ``(fn, args, kwargs)``, fill its slots with ``values`` (what
    Dask brought from the steps that made them), announce the start and send a small result
    (``talk``), call it: here, or with ``stop`` (the name of the Dask ``Event`` that cancels
    it) in a subprocess (``dask_isolation``). An exception
    that cannot travel in a future (``StopIteration``, ``SystemExit``) comes back as a
    RuntimeError."""
    fn, args, kwargs = pickle.loads(payload)
    if values:
        plain = [v.value if isinstance(v, Logged) else v for v in values]
        args = tuple(_filled(v, plain) for v in args)
        kwargs = {k: _filled(v, plain) for k, v in kwargs.items()}
    if talk is not None and talk.start:
        _say(talk, {"at": time.time()})
    if stop is not None:
        from pardag.executors.dask_isolation import run_isolated

        value = run_isolated(fn, args, kwargs, stop)
    else:
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            wrapped = deliverable(exc)
            if wrapped is exc:
                raise
            raise wrapped from None
    if talk is not None and talk.result:
        _send_small(talk, value)
    return value


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


def _filled(value: Any, values: list[Any]) -> Any:
    """An argument with its slots filled: itself a slot, or a dict holding slots (the
    ``inputs`` binders pass), as ``Outputs.swap`` leaves them."""
    if isinstance(value, Slot):
        return values[value.n]
    if isinstance(value, dict):
        return {k: values[v.n] if isinstance(v, Slot) else v for k, v in value.items()}
    return value


def _send_small(talk: Talk, value: Any) -> None:
    """Send ``value`` on the topic if it pickles small; else the runner fetches it."""
    from dask.sizeof import sizeof

    if sizeof(value) > 8 * SMALL:  # surely too big: not worth pickling to find out
        return
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # the runner fetches it as Dask serializes it
        return
    if len(data) <= SMALL:
        _say(talk, {"value": data})


def _say(talk: Talk, message: dict[str, Any]) -> None:
    """Tell the runner (through the scheduler) ``message`` about the call, from here."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker (a test calling it directly)
        return
    worker.log_event(talk.topic, {"key": talk.key, "worker": worker.address, **message})
