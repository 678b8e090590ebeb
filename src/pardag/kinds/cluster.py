"""What a kind's step does on a Dask worker (``executor: dask``), whichever kind it is.

The ``dask`` executor pickles each call and runs it on a worker thread, so a kind's call
there must be a picklable, synchronous callable. The runner renders the step's templates
(the action's ``bind``: a shell step's ``Command``, an HTTP step's request), and the worker
runs what was rendered with the kind's own code:

* ``shell.ShellOnWorker`` runs ``shell.execute`` (the local shell step's process group,
  output and exit semantics) and ``http.HttpOnWorker`` runs ``http.Exchange`` over a client
  of its own that checks the run's egress policy on the worker, each ``watched``: in an
  event loop of its own, stopped at the step's timeout or once Dask cancels the task (a
  worker thread cannot be stopped from outside, so the call stops itself);
* Lua, JavaScript and wasm steps make the call the ``processes`` executor makes, with its
  caps (``code.WorkerCall``, ``wasm.WasmCall``); a Python code step ``pycode.CodeOnWorker``.

``OnWorker`` wraps each: a runtime missing on the worker (lupa, quickjs, wasmtime, httpx) is
an error naming the step, the worker and what to install there, and the text of a failure
loses the run's secrets before Dask sees it (a worker logs the failures of its tasks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pardag.errors import MissingRuntime
from pardag.secrets import Masker

__all__ = ["POLL", "OnWorker", "watched", "worker_address"]

POLL = 0.1
"""Seconds between two looks, on a worker, at whether Dask still wants the task."""

T = TypeVar("T")

_CORE = ("httpx", "httpcore")
"""pardag's own dependencies an HTTP step needs: missing, pardag is not installed whole."""


def worker_address() -> str:
    """The address of the Dask worker running this call (``this process`` elsewhere)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not on a worker
        return "this process"


def _cancelled() -> Callable[[], bool]:
    """Whether Dask has cancelled the task this thread runs (never, off a worker). Called on
    the task's thread: Dask knows the task by it."""
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
    except (ImportError, ValueError, KeyError):
        return lambda: False

    def cancelled() -> bool:
        task = worker.state.tasks.get(key)
        return task is None or task.state in ("cancelled", "released", "forgotten")

    return cancelled


def watched(work: Callable[[], Awaitable[T]], timeout: float | None, what: str) -> T:
    """Run ``work()`` in an event loop of its own, stopped (its processes killed, its
    connections closed: it is cancelled) at ``timeout`` seconds or as soon as Dask cancels
    the task: a thread cannot be stopped from outside, so it stops itself."""
    cancelled = _cancelled()

    async def run() -> T:
        task = asyncio.ensure_future(work())
        loop = asyncio.get_running_loop()
        ends = None if timeout is None else loop.time() + timeout
        while not task.done():
            left = POLL if ends is None else min(POLL, ends - loop.time())
            await asyncio.wait({task}, timeout=max(left, 0))
            if task.done():
                break
            late = ends is not None and loop.time() >= ends
            if late or cancelled():
                task.cancel()
                await asyncio.wait({task})
                raise _stopped(what, timeout if late else None)
        return task.result()

    return asyncio.run(run())


def _stopped(what: str, timeout: float | None) -> Exception:
    """What a call stopped on the worker raises (the runner has recorded the attempt as
    timed out or cancelled already: its own timer fired first)."""
    where = f"the Dask worker {worker_address()}"
    if timeout is not None:
        return TimeoutError(f"{what} ran past the step's timeout of {timeout:g}s on {where}")
    return RuntimeError(f"Dask cancelled the task, so {where} stopped {what}")


@dataclass(frozen=True)
class OnWorker:
    """Step ``step_id``'s ``call`` on a Dask worker, its failures said in the step's name."""

    step_id: str
    call: Callable[..., Any]
    masker: Masker | None = None

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.call(*args, **kwargs)
        except MissingRuntime as exc:
            raise MissingRuntime(
                f"step {self.step_id!r} ran on the Dask worker {worker_address()}: {exc}; "
                "install it on every worker of the cluster"
            ) from None
        except ModuleNotFoundError as exc:
            if exc.name not in _CORE:
                raise
            raise MissingRuntime(
                f"step {self.step_id!r} ran on the Dask worker {worker_address()}, which lacks "
                f"{exc.name!r}, a dependency of pardag: install pardag there as in the runner "
                "(pip install pardag, with the same extras)"
            ) from None
        except Exception as exc:
            if self._masked(exc):
                raise exc from None  # its cause may hold a secret too
            raise

    def _masked(self, exc: Exception) -> bool:
        """Whether a secret of the run was masked out of ``exc``'s message (the runner masks
        what it shows; this is for the worker's own log of the failure)."""
        if not (self.masker and exc.args and isinstance(exc.args[0], str)):
            return False
        masked = self.masker.text(exc.args[0])
        if masked == exc.args[0]:
            return False
        exc.args = (masked, *exc.args[1:])
        return True

    def __repr__(self) -> str:
        return f"step {self.step_id!r} on a Dask worker"
