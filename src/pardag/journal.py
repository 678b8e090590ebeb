"""A run's journal: what the run store must know, committed in groups before the run moves on.

Write-ahead, as docs/runs.md promises: a step is recorded as running before it is dispatched,
and its end is committed before its dependents are released. Waiting for a commit per step
would cost an fsync each, so one writer thread commits everything that arrived while the
previous commit was on its way in one transaction (group commit), then hands the loop the
continuations that waited for it (start the step, release its dependents) in order.

Step logs (``pardag.steplog``) go into the same groups; they are added from whichever thread
the step writes on, and nothing waits for them.

The journal is also a ``Listener``: every event of the run goes into the same transactions.
And it is the run's only way to the step output cache: a step's cached output is stored with
its final record, and a cache lookup is answered by the writer thread after the group it came
with, so the event loop never waits for the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from pardag.caching import lookup
from pardag.clock import Clock, SystemClock
from pardag.events import Event
from pardag.recording import encode_json
from pardag.store.base import CacheEntry, EventRecord, LogRecord, RunUpdate, StepRecord, Store

__all__ = ["Answered", "Journal", "warn_not_stored"]

Then = Callable[[], None]
Answered = Callable[[bool, Any, BaseException | None], None]
"""Receives a cache lookup's answer on the loop: (hit, output, the store's error or None)."""


class _Lookup(NamedTuple):
    key: str
    now: float
    ttl: float | None
    then: Answered


class Journal:
    """Buffers records, commits them from a writer thread, then runs their continuations.

    ``add`` is called on the event loop; ``then`` runs on the loop once what was added with it
    (and everything added before) is durable. A failed commit is handed to ``on_error`` on the
    loop; nothing added after it is committed.
    """

    def __init__(
        self, store: Store, run_id: str, first_event: int = 1, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.first_event = first_event
        self._clock = clock or SystemClock()
        self._steps: list[StepRecord] = []
        self._events: list[EventRecord] = []
        self._logs: list[LogRecord] = []
        self._runs: list[RunUpdate] = []
        self._caches: list[CacheEntry] = []
        self._lookups: list[_Lookup] = []
        self._thens: list[Then] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._idle = False  # the writer waits for work: adding must wake it
        self._failed: BaseException | None = None
        self._seq = first_event - 1
        self._in_flight = 0  # groups handed to the writer and not yet delivered
        self._thread = threading.Thread(target=self._write_loop, name="pardag-journal", daemon=True)

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_error: Callable[[BaseException], None],
        after: Then,
    ) -> None:
        """Start the writer; continuations, ``on_error`` and ``after`` (called once after each
        group's continuations) then run on ``loop``."""
        self._loop, self._on_error, self._after = loop, on_error, after
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while something added has not been delivered yet."""
        with self._lock:
            return self._in_flight > 0 or bool(
                self._thens or self._steps or self._runs or self._lookups
            )

    def add(
        self,
        *,
        step: StepRecord | None = None,
        run: RunUpdate | None = None,
        cache: CacheEntry | None = None,
        log: LogRecord | None = None,
        then: Then | None = None,
    ) -> None:
        """Queue a record (and a step's output for the cache, a piece of a step's log); ``then``
        runs on the loop after it is committed. Thread-safe.

        Once a commit has failed nothing more is recorded: ``then`` runs at once, so that the
        run (which is failing with the store's error) can wind down.
        """
        if self._failed is not None:
            if then is not None:
                then()
            return
        with self._lock:
            if step is not None:
                self._steps.append(step)
            if run is not None:
                self._runs.append(run)
            if cache is not None:
                self._caches.append(cache)
            if log is not None:
                self._logs.append(log)
            if then is not None:
                self._thens.append(then)
            if self._idle:
                self._wake.notify()

    def lookup(self, key: str, ttl: float | None, then: Answered) -> None:
        """Look ``key`` up in the step output cache; ``then(hit, output, error)`` runs on the
        loop with the answer, after what was added before has been committed.

        Once a commit has failed, the answer is a miss, at once (the run is stopping).
        """
        if self._failed is not None:
            then(False, None, None)
            return
        with self._lock:
            self._lookups.append(_Lookup(key, self._clock.time(), ttl, then))
            if self._idle:
                self._wake.notify()

    def on_event(self, event: Event) -> None:
        """Listener: record every event of the run, in order."""
        self._seq += 1
        data = encode_json(event.data, default=repr) or "{}" if event.data else "{}"
        at = self._clock.time() - (self._clock.monotonic() - event.time)
        record = EventRecord(
            self.run_id, self._seq, at, event.kind.value, event.step, event.attempt, data
        )
        with self._lock:
            self._events.append(record)
            if self._idle:
                self._wake.notify()

    async def aclose(self) -> None:
        """Commit what is left, run its continuations, and stop the writer thread."""
        self._close()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def close_now(self, timeout: float) -> None:
        """Commit what is left and stop the writer, waiting here (at most ``timeout`` seconds)
        instead of on the loop: for a process that leaves at once. The continuations are
        dropped (the loop will not run them)."""
        self._close()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _close(self) -> None:
        with self._lock:
            self._closing = True
            self._wake.notify()

    # -- the writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not (
                    self._steps
                    or self._events
                    or self._logs
                    or self._runs
                    or self._caches
                    or self._lookups
                    or self._thens
                ):
                    if self._closing:
                        return
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                steps, events, runs, thens = self._steps, self._events, self._runs, self._thens
                caches, lookups, logs = self._caches, self._lookups, self._logs
                self._steps, self._events, self._runs, self._thens = [], [], [], []
                self._logs = []
                self._caches, self._lookups = [], []
                self._in_flight += 1
            failure = None
            try:
                if self._failed is None:  # after a failure, only the continuations go on
                    for entry in caches:
                        self.store.put_cache(entry)
                    self.store.write(runs=runs, steps=steps, events=events, logs=logs)
            except BaseException as exc:  # the run fails with it, on the loop
                self._failed = failure = exc
            answered = thens + [self._answer(q) for q in lookups]  # misses once failed
            if failure is not None:
                self._post(self._fail, failure, answered)
            else:
                self._post(self._deliver, answered)

    def _answer(self, query: _Lookup) -> Then:
        """Read the cache for ``query`` (on the writer thread); its answer, to run on the loop."""
        if self._failed is not None:
            return functools.partial(query.then, False, None, None)
        try:
            hit, output = lookup(self.store, query.key, query.now, query.ttl)
        except Exception as exc:  # the store's error: the run stops with it, saying why
            return functools.partial(query.then, False, None, exc)
        return functools.partial(query.then, hit, output, None)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, thens: list[Then]) -> None:
        for then in thens:
            then()
        with self._lock:
            self._in_flight -= 1
        self._after()

    def _fail(self, exc: BaseException, thens: list[Then]) -> None:
        self._on_error(exc)
        for then in thens:
            then()
        with self._lock:
            self._in_flight -= 1
        self._after()


def warn_not_stored(step: str, value: Any) -> None:
    """The warning for an output the store cannot hold as JSON (kept in memory for the run)."""
    warnings.warn(
        f"step {step!r}: its output ({type(value).__name__}) is not JSON, so the run store "
        "keeps no copy (resuming the run would run the step again); return JSON-able values, "
        "or pass encoder= to run() to turn such values into JSON",
        RuntimeWarning,
        stacklevel=2,
    )
