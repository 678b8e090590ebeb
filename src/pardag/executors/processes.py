"""The ``processes`` executor: CPU-bound plain functions on a small pool of worker processes.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one call. Killing one of its
workers breaks the whole pool, so a step that times out would keep its CPU until it returns.
Here every worker is a ``multiprocessing`` process of our own, talking over a duplex pipe:

* workers start lazily, one per call in flight up to ``capacity``, and are reused;
* the parent end of each pipe and the process sentinel are watched with ``loop.add_reader``,
  so results arrive without a thread per worker;
* ``stop`` SIGKILLs the worker's process group (each worker calls ``setsid``), so the step's
  own child processes die with it; a fresh worker replaces it on the next call;
* a worker that dies (``os._exit``, a segfault, the OOM killer) fails only its own call, with
  the exit code in the message.

Workers are forked by a fork server (forking a process that has threads is unsafe) and never
import the user's ``__main__`` (``pardag.executors.spawning``), so a script needs no
``if __name__ == "__main__":`` guard. Functions, arguments and results cross as pickles
(``pardag.executors.payload``): by reference when importable, by value (cloudpickle) when
defined in ``__main__``, a notebook or a REPL, and for lambdas and closures. POSIX only: it
relies on a fork server, on ``add_reader`` for pipes and on ``setsid``/``killpg``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from multiprocessing.process import BaseProcess
from typing import Any

from pardag import stepprocs, tether
from pardag.child import WORKER_CAPS
from pardag.executors.base import Executor, describe_exit, set_remote_traceback
from pardag.executors.payload import describe as _describe
from pardag.executors.payload import dumps as _dumps
from pardag.executors.payload import unsendable
from pardag.executors.spawning import WorkerProcess
from pardag.states import ExecutorName

__all__ = ["ProcessExecutor"]

_JOIN_TIMEOUT = 5.0
"""Seconds to wait for a killed worker to be reaped; after SIGKILL this is near instant."""

_READY = b""
"""A worker's first message: it started; a death before it means the start failed."""

_IMPORT_HINT = (
    "the worker imports the function's module by name, so it must be importable there (on "
    "sys.path, not made at run time); or define the function in the script itself, which "
    "is sent by value"
)


# --- worker side --------------------------------------------------------------------------


def _worker_main(conn: Connection, path: list[str]) -> None:
    """Entry point of a worker process: run pickled calls from ``conn`` until it closes."""
    if hasattr(os, "setsid"):
        with contextlib.suppress(OSError):
            os.setsid()  # its own process group, so stop() can kill the step's children too
    sys.path[:] = path  # a forkserver keeps the sys.path of whoever started it first
    with contextlib.suppress(OSError):
        conn.send_bytes(_READY)
    while True:
        try:
            request = conn.recv_bytes()
            conn.send_bytes(_run_request(request))
        except (EOFError, OSError):  # the parent closed the pipe or went away
            return


def _run_request(request: bytes) -> bytes:
    """Run one pickled ``(fn, args, kwargs)``; reply ``("ok", value)`` or an error reply."""
    try:
        fn, args, kwargs = pickle.loads(request)
    except Exception as exc:
        error = RuntimeError(
            f"the step could not be loaded in the worker process ({_describe(exc)}); "
            + _IMPORT_HINT
        )
        return _error_reply(error, _format(exc))
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:  # SystemExit too: it belongs to the step, not the worker
        return _error_reply(exc, _format(exc))
    try:
        return _dumps(("ok", value))
    except Exception as exc:
        error = RuntimeError(
            "the step's return value could not be sent back from the worker process: "
            + _describe(exc)
        )
        return _error_reply(error, _format(exc))


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _error_reply(exc: BaseException, text: str) -> bytes:
    """Pickle ``("error", exc, text)``; an exception that cannot make the trip is replaced."""
    try:
        reply = _dumps(("error", exc, text))
        pickle.loads(reply)  # some exceptions pickle but cannot be rebuilt (custom __init__)
        return reply
    except Exception:
        substitute = RuntimeError(
            f"{_describe(exc)} (the original exception could not be sent back from the "
            "worker process, so this RuntimeError carries its type and message)"
        )
        return _dumps(("error", substitute, text))


# --- parent side --------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    """One worker process, the parent end of its pipe, and the call it runs (if any)."""

    process: BaseProcess
    conn: Connection
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] | None = None
    ready: bool = False
    caps: Hashable | None = None
    """The limits the worker took for good (``pardag.child.WORKER_CAPS``): only calls with
    the same caps go to it."""


def _pickle_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Pickle a call in the parent, so an unpicklable one fails clearly and costs no worker."""
    try:
        return _dumps((fn, args, kwargs))
    except Exception as exc:
        try:
            _dumps(fn)
        except Exception as fn_exc:
            error = TypeError(unsendable(fn, fn_exc))
        else:
            error = TypeError(
                f"the arguments of {fn!r} cannot be pickled for the processes executor "
                f"({_describe(exc)}); pass picklable values or use the threads executor"
            )
        raise error from exc


def _settle(future: asyncio.Future[Any], reply: bytes) -> None:
    """Complete ``future`` from a worker's pickled reply."""
    try:
        message = pickle.loads(reply)
    except Exception as exc:
        error = RuntimeError(
            "the step's outcome could not be received from the worker process: " + _describe(exc)
        )
        error.__cause__ = exc
        future.set_exception(error)
        return
    if message[0] == "ok":
        future.set_result(message[1])
        return
    _, raised, text = message
    if isinstance(raised, StopIteration):  # asyncio futures refuse it, as generators do
        wrapped = RuntimeError(f"the step raised {_describe(raised)}")
        wrapped.__cause__ = raised
        raised = wrapped
    future.set_exception(set_remote_traceback(raised, text))


def _caps_of(fn: Callable[..., Any]) -> Hashable | None:
    """The limits a call sets for good in its worker (a code step's), None for most calls;
    looked up on the call, or on the call a captured one (``steplog.InWorker``) wraps."""
    caps = getattr(fn, WORKER_CAPS, None)
    if caps is None:
        caps = getattr(getattr(fn, "fn", None), WORKER_CAPS, None)
    return caps if isinstance(caps, Hashable) else None


def _kill(process: BaseProcess) -> None:
    """SIGKILL the worker and its process group (the step's own children)."""
    pid = process.pid
    if pid is None:
        return
    if hasattr(os, "killpg"):
        # Fails harmlessly (ESRCH) if the worker has not reached setsid() yet.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def _reap(worker: _Worker) -> int | None:
    """Wait for a killed worker, release its pipe and process; returns its exit code."""
    worker.process.join(_JOIN_TIMEOUT)
    code = worker.process.exitcode
    if worker.process.pid is not None:
        tether.release(worker.process.pid)
    worker.conn.close()
    if code is not None:
        worker.process.close()
    return code


class ProcessExecutor(Executor):
    """Runs plain functions in worker processes that can be killed one at a time.

    ``aclose`` leaves no worker behind. The fork server (pardag's, shared by every
    ``ProcessExecutor``) and multiprocessing's resource tracker stay for the interpreter.
    """

    name = ExecutorName.PROCESSES

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers or os.cpu_count() or 1
        self._workers: set[_Worker] = set()
        self._idle: list[_Worker] = []
        self._busy: dict[asyncio.Future[Any], _Worker] = {}
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._max_workers

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the processes executor is closed")
        future: asyncio.Future[Any] = loop.create_future()
        try:
            request = _pickle_call(fn, args, kwargs)
            caps = _caps_of(fn)
            worker = self._take_worker(loop, caps)
        except (TypeError, OSError) as exc:
            future.set_exception(exc)
            return future
        worker.future = future
        worker.caps = worker.caps if caps is None else caps
        self._busy[future] = worker
        future.add_done_callback(self._on_future_done)
        if worker.process.pid is not None:
            stepprocs.started(worker.process.pid, fn)
        try:
            worker.conn.send_bytes(request)
        except OSError:  # it died while idle, before its sentinel was seen
            self._lost(worker)
        return future

    def stop(self, future: asyncio.Future[Any]) -> bool:
        worker = self._busy.pop(future, None)
        if worker is not None:
            worker.future = None
            self._detach(worker)
            _kill(worker.process)
            _reap(worker)
        future.cancel()
        return True

    async def aclose(self) -> None:
        self._closed = True
        workers = list(self._workers)
        for worker in workers:
            self._detach(worker)
            _kill(worker.process)  # kill them all first, so they die in parallel
        for worker in workers:
            _reap(worker)
            if worker.future is not None:
                worker.future.cancel()
                worker.future = None
        self._busy.clear()

    # --- workers --------------------------------------------------------------------------

    def _take_worker(self, loop: asyncio.AbstractEventLoop, caps: Hashable | None) -> _Worker:
        """An idle live worker that fits ``caps`` (the same caps; for a capped call one with
        none yet), else a new one, in place of an idle one that does not fit when all are
        made; the runner never exceeds capacity."""
        for worker in [w for w in self._idle if not w.process.is_alive()]:
            self._lost(worker)
        fits = self._idle_with(caps) or (self._idle_with(None) if caps is not None else None)
        if fits is not None:
            self._idle.remove(fits)
            return fits
        if len(self._workers) >= self._max_workers:
            if not self._idle:
                raise RuntimeError(
                    f"all {self._max_workers} workers are busy: submit() beyond capacity"
                )
            unfit = self._idle.pop(0)  # the least recently used
            self._detach(unfit)
            _kill(unfit.process)
            _reap(unfit)
        return self._start_worker(loop)

    def _idle_with(self, caps: Hashable | None) -> _Worker | None:
        """The most recently used idle worker with ``caps`` (its caches are warm)."""
        for worker in reversed(self._idle):
            if worker.caps == caps:
                return worker
        return None

    def _start_worker(self, loop: asyncio.AbstractEventLoop) -> _Worker:
        parent_conn, child_conn = Pipe(duplex=True)
        process = WorkerProcess(
            target=_worker_main,
            args=(child_conn, list(sys.path)),
            name="pardag-worker",
            daemon=True,  # if aclose() is never called, multiprocessing ends it at exit
        )
        try:
            process.start()
        except BaseException:
            parent_conn.close()
            raise
        finally:
            child_conn.close()  # else the parent never sees EOF when the worker dies
        worker = _Worker(process, parent_conn, loop)
        if process.pid is not None:
            tether.hold(process.pid)  # the worker (and the step's children) die with us
        self._workers.add(worker)
        loop.add_reader(parent_conn.fileno(), self._on_readable, worker)
        loop.add_reader(process.sentinel, self._on_exit, worker)
        return worker

    def _detach(self, worker: _Worker) -> None:
        """Forget a worker that is about to go: no more readers, not idle, not counted."""
        self._workers.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        worker.loop.remove_reader(worker.conn.fileno())
        worker.loop.remove_reader(worker.process.sentinel)

    def _lost(self, worker: _Worker) -> None:
        """The worker ended on its own: clean up and fail the call it was running."""
        self._detach(worker)
        _kill(worker.process)  # its process group may still hold the step's children
        code = _reap(worker)
        future, worker.future = worker.future, None
        if future is None:
            return
        self._busy.pop(future, None)
        if future.done():
            return
        if worker.ready:
            message = f"worker process {describe_exit(code)} while running the step"
        else:  # e.g. the fork server could not start it (see stderr)
            message = f"worker process {describe_exit(code)} before it could run the step"
        future.set_exception(RuntimeError(message))

    # --- event-loop callbacks -------------------------------------------------------------

    def _on_readable(self, worker: _Worker) -> None:
        """A reply (or EOF) arrived on the worker's pipe."""
        try:
            reply = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(worker)
            return
        if reply == _READY:
            worker.ready = True
            return
        future, worker.future = worker.future, None
        self._idle.append(worker)
        if future is None:
            return
        self._busy.pop(future, None)
        if not future.done():
            _settle(future, reply)

    def _on_exit(self, worker: _Worker) -> None:
        """The worker process ended; a reply it sent just before still counts."""
        while worker.future is not None and worker in self._workers and worker.conn.poll():
            self._on_readable(worker)
        if worker in self._workers:
            self._lost(worker)

    def _on_future_done(self, future: asyncio.Future[Any]) -> None:
        """Cancelling the future directly stops the work too, as for async tasks."""
        if future.cancelled() and future in self._busy:
            self.stop(future)
