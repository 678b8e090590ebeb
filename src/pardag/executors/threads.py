"""The ``threads`` executor: plain functions on a pool of threads (their default).

A thread cannot be stopped from outside. When a step on a thread times out or is cancelled,
the run moves on, but the thread's slot is not handed out again until the function returns,
and ``aclose`` (so the run) waits for it.

A worker that finishes a call may start the next one itself: the runner's ``follow`` hook,
called on the worker with the call's ``tag`` and result, names a call that became ready by this
one alone (a chain), and ``on_follow`` tells the loop afterwards. A chain of plain functions
then runs on one thread without a round trip through the event loop per link.

Why not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined when the interpreter
exits, so a second Ctrl-C could not exit while a step still runs; and each call would pay for
a ``concurrent.futures.Future`` wrapped in an asyncio one. Here workers are daemon threads that
take calls from one queue and hand each result straight to the run's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from pardag.executors.base import Executor, Follow, OnFollow, deliverable
from pardag.states import ExecutorName

__all__ = ["DEFAULT_THREADS", "ThreadExecutor"]

DEFAULT_THREADS = 64
"""Threads used when ``max_concurrency`` is 0 (auto): enough for I/O-bound steps."""

_Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any], int]
_Followed = tuple[int, asyncio.Future[Any], float]


class ThreadExecutor(Executor):
    """Runs plain functions on daemon threads, started lazily up to ``max_workers``."""

    name = ExecutorName.THREADS
    reports_done = True
    chains = True

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers or DEFAULT_THREADS
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._submitted = 0
        self._finished: list[int] = []  # calls each worker finished; one writer per slot
        self._threads: list[threading.Thread] = []
        self._exited: asyncio.Future[None] | None = None
        self._alive = 0
        self._lock = threading.Lock()
        self._results: deque[tuple[asyncio.Future[Any], tuple[bool, Any], _Followed | None]]
        self._results = deque()
        self._wake_pending = False
        self.follow: Follow | None = None
        self.on_follow: OnFollow | None = None

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._calls.put((fn, args, kwargs, future, tag))
        self._submitted += 1
        threads = len(self._threads)
        if threads < self._max_workers and self._submitted - sum(self._finished) > threads:
            self._start_thread(loop)  # every thread is busy (a stale count only adds one early)
        return future

    def stop(self, future: asyncio.Future[Any]) -> bool:
        return False

    async def aclose(self) -> None:
        """Let queued calls finish, then wait until every worker thread has exited."""
        if self._exited is None:
            self._exited = asyncio.get_running_loop().create_future()
            for _ in self._threads:
                self._calls.put(None)
            if not self._threads:
                self._exited.set_result(None)
        await asyncio.shield(self._exited)
        for thread in self._threads:  # each has said goodbye; let it finish returning
            thread.join()

    def _start_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        slot = len(self._threads)
        self._finished.append(0)
        thread = threading.Thread(
            target=self._work, args=(loop, slot), name=f"pardag-step-{slot}", daemon=True
        )
        with self._lock:
            self._alive += 1
        self._threads.append(thread)
        thread.start()

    def _work(self, loop: asyncio.AbstractEventLoop, slot: int) -> None:
        """A worker thread: run calls (and the chains they start) until None arrives."""
        calls, finished, follow = self._calls, self._finished, self.follow
        while (call := calls.get()) is not None:
            fn, args, kwargs, future, tag = call
            del call
            while True:
                try:
                    outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
                except BaseException as exc:  # delivered to the runner, never raised here
                    outcome = (False, deliverable(exc))
                nxt = None
                if follow is not None and outcome[0] and tag >= 0:
                    with contextlib.suppress(Exception):  # no chain, then: the loop decides
                        nxt = follow(tag, outcome[1])
                if nxt is None:
                    break
                tag, fn, args, kwargs = nxt
                followed = loop.create_future()
                self._report(loop, future, outcome, (tag, followed, time.time()))
                future = followed
            del fn, args, kwargs
            finished[slot] += 1  # before posting, so the next submit reuses this thread
            self._report(loop, future, outcome, None)
        with self._lock:
            self._alive -= 1
            last = self._alive == 0
        if last and self._exited is not None:
            _post(loop, _settle, self._exited, (True, None))

    def _report(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        outcome: tuple[bool, Any],
        followed: _Followed | None,
    ) -> None:
        self._results.append((future, outcome, followed))
        if not self._wake_pending:  # one wake-up carries every result that arrives meanwhile
            self._wake_pending = True
            _post(loop, self._deliver)

    def _deliver(self) -> None:
        """On the loop: hand every finished call's outcome to its future."""
        self._wake_pending = False  # first, so that a result appended from now on wakes again
        results, notify = self._results, self.notify
        settled: list[asyncio.Future[Any]] = []
        while results:
            future, outcome, followed = results.popleft()
            _settle(future, outcome)
            if followed is not None and self.on_follow is not None:
                if settled and notify is not None:  # keep the order of the chain's reports
                    notify(settled)
                    settled = []
                self.on_follow(future, outcome[1], *followed)
            else:
                settled.append(future)
        if settled and notify is not None:
            notify(settled)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for this any more
        loop.call_soon_threadsafe(fn, *args)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
