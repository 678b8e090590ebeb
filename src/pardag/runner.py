"""Drives one run: dispatch, retries, timeouts, cancellation and events.

The runner is the only code that changes run state. Executors report each finished attempt by
a done-callback that appends to one inbox and wakes the loop; timers (timeouts, backoffs, rate
windows) do the same. The loop then reads as a sentence: start everything the scheduler says is
ready, wait for the inbox, settle what arrived, until every step is final.

Stopping work. A timed-out or cancelled step is stopped for real where its executor can (a
coroutine is cancelled, a worker process killed). A thread cannot be stopped: the step is
recorded as failed or cancelled at once, but its slot stays taken until the function returns,
and the run does not return before that.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import os
import random
import signal
import socket
import statistics
import threading
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pardag.caching import CachePolicy, cache_policies, lookup, remember
from pardag.errors import (
    ArgumentError,
    ExpressionError,
    PardagError,
    RunCancelled,
    RunTimedOut,
    StepCancelled,
    StepFailed,
    StepPaused,
    StepSkipped,
    StepTimeout,
)
from pardag.events import Event, EventKind, Listener
from pardag.executors import create_executor, default_capacity
from pardag.executors.base import Executor, format_traceback
from pardag.executors.threads import ThreadExecutor
from pardag.journal import Journal, warn_not_stored
from pardag.kinds import Action, RunContext, action_for
from pardag.kinds.base import no_inputs
from pardag.kinds.python import bind_function
from pardag.model import Graph, Settings, Step
from pardag.recording import encode_json as encode_output
from pardag.results import Outputs, RunResult, StepResult, StepResults
from pardag.scheduler import Pool, Scheduler
from pardag.states import Mode, OnFailure, RunStatus, StepState
from pardag.store.base import RunRecord, RunUpdate, StepRecord, Store, StoreError

if TYPE_CHECKING:
    from pardag.model import Workflow
    from pardag.recording import Resumption

__all__ = ["Runner", "run_sync"]

_FREEZE_AT = 5_000
"""Runs with at least this many steps freeze the heap for their duration; see _freeze_heap."""
_AHEAD = 16
"""Steps per thread handed to the thread pool at once while steps are short; see _adapt."""
_SHORT_STEP = 0.001
"""Seconds (a moving average of dispatch to end) below which a step counts as short."""
_ZERO = (0.0,)
_SLICE = 0.02
"""Seconds the hot loop may run before it lets the event loop serve timers and signals."""
_NO_INPUTS: dict[str, Any] = {}
_SKIP = object()  # inbox marker: the step's `when` was false
_ABANDON = object()  # inbox marker: a thread step timed out and cannot be stopped
_REQUEUE = object()  # inbox marker: a backoff ended
_UNPAUSE = object()  # inbox marker: a paused step's wait for an answer timed out


class _Handoff(NamedTuple):
    """Inbox item: a step succeeded and its worker went on to run ``step`` (see ``_follow``)."""

    done: asyncio.Future[Any]
    output: Any
    step: int
    future: asyncio.Future[Any]
    started: float


class Runner:
    """Runs one compiled workflow once. Create, then ``await runner.run()``."""

    def __init__(
        self,
        workflow: str,
        graph: Graph,
        settings: Settings,
        listeners: Sequence[Listener] = (),
        params: Mapping[str, Any] | None = None,
        *,
        store: Store | None = None,
        record: RunRecord | None = None,
        encoder: Callable[[Any], Any] | None = None,
        resume: Sequence[StepRecord] | None = None,
        first_event: int = 1,
        paused_since: Mapping[str, float] | None = None,
        cache: bool = True,
    ) -> None:
        self.run_id = record.run_id if record is not None else uuid.uuid4().hex
        self.workflow = workflow
        self.graph = graph
        self.settings = settings
        self.params = dict(params or {})
        self._listeners = list(listeners)
        self._journal = Journal(store, self.run_id, first_event) if store is not None else None
        self._resume = list(resume) if resume is not None else None  # None: a new run
        self._kept: set[int] = set()  # steps final in an earlier process of this run
        self._paused = False
        self._record = record
        self._encoder = encoder
        self._recorded: dict[int, tuple[int, float]] = {}  # step -> (attempt, started_at)
        if self._journal is not None:
            self._listeners.append(self._journal)  # before anything asks whether anyone listens
        self._steps = graph.steps
        self.context = RunContext(self.run_id, workflow, self.params)
        self.context.state["paused_at"] = dict(paused_since or {})  # approval waits so far
        self._actions: list[Action] = _actions(graph.steps, self.context)
        self._executor_of = [
            self._pick_executor(s, a) for s, a in zip(graph.steps, self._actions, strict=True)
        ]
        self._checks = [_precondition(s) for s in graph.steps]
        self._use_cache = cache  # False: no lookups, but fresh outputs still refresh the cache
        self._cache = cache_policies(
            graph.steps, self.context, stored=self._journal is not None, encoder=encoder
        )
        self._cache_keys: dict[int, str] = {}  # step -> its attempt's key, to store its output
        self._cached: set[int] = set()  # steps whose output came from the cache
        n = len(graph.ids)
        self._outputs: list[Any] = [None] * n
        self._attempts = [0] * n
        self._started = array("d", _ZERO) * n  # time.time(); 0.0 while not yet
        self._finished = array("d", _ZERO) * n
        self._errors: dict[int, StepFailed] = {}
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._timed_out: set[int] = set()
        self._no_retry: set[int] = set()
        self._detached: dict[asyncio.Future[Any], int] = {}
        self._executors: dict[str, Executor] = {}
        self._inbox: deque[tuple[int, Any]] = deque()
        self._pumping = False
        self._reporting: set[str] = set()
        self._reported: dict[asyncio.Future[Any], int] = {}
        self._stop: tuple[RunStatus, PardagError] | None = None
        self._stop_reason = ""
        self._first_failure: StepFailed | None = None
        self._wakeup_armed: float | None = None
        self.sched = self._scheduler(past_durations(store, workflow, graph, settings.mode))
        self.sched.log_all = bool(self._listeners)
        self._ahead_allowed = self._may_hand_over_ahead()
        self._chain = self._chains()
        self._heap = self.sched._heap
        self._ahead = 1
        self._step_time = 4 * _SHORT_STEP  # assume long steps until some finish quickly

    # -- public -------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run every step to a final state and return the result."""
        self._loop = asyncio.get_running_loop()
        started = time.time()
        if self._journal is not None:
            self._open_journal(self._journal, started)
        self._emit(EventKind.RUN_STARTED, None)
        deadline = self._arm_run_timeout()
        frozen = _freeze_heap(len(self.graph.ids))
        try:
            await self._drive()
        except BaseException:
            self.cancel("the task running the workflow was cancelled")
            raise
        finally:
            if frozen:
                gc.unfreeze()
            if deadline is not None:
                deadline.cancel()
            await self._close_executors()
            await self.context.aclose()
        result = self._result(started)
        self._emit(EventKind.RUN_FINISHED, None, status=result.status.value)
        if self._journal is not None:
            await self._close_journal(self._journal, result)
        return result

    def cancel(self, reason: str = "cancelled by the caller") -> None:
        """Cancel the run from its own event loop: running steps are stopped, no new ones start."""
        self._abort(RunStatus.CANCELLED, RunCancelled(reason), f"run cancelled: {reason}")

    # -- the loop ---------------------------------------------------------------------------

    async def _drive(self) -> None:
        self._all_final = self._loop.create_future()
        if self._resume:
            self._restore(self._resume)
        self.sched.prepare()
        self._report()
        self._pump()
        await self._all_final

    def _pump(self) -> None:
        """The hot loop: settle what arrived, start what is ready, until neither is left.

        It runs inside whichever callback delivered something (a step's end, a timer), so a
        completion is handled without another trip through the event loop. After a slice of
        ``_SLICE`` seconds it hands the loop back (timers, signals) and continues next turn.
        """
        if self._pumping or self._all_final.done():
            return
        self._pumping = True
        sched, inbox = self.sched, self._inbox
        try:
            deadline = time.monotonic() + _SLICE
            while True:
                while inbox:
                    self._settle(*inbox.popleft())
                now = time.monotonic()
                ready = sched.get_ready(now)
                if sched.waits:
                    self._report_waits()
                if not ready:
                    break
                for i in ready:
                    self._begin(i)
                if now > deadline:
                    self._loop.call_soon(self._pump)
                    return
            self._after_pump()
        except BaseException as exc:  # a bug or an interrupt: end the run with it
            if not self._all_final.done():
                self._all_final.set_exception(exc)
        finally:
            self._pumping = False

    def _after_pump(self) -> None:
        sched = self.sched
        self._report()
        if sched.wakeup_at is not None:
            self._arm_wakeup(sched.wakeup_at)
        if not sched.unfinished:
            self._all_final.set_result(None)
        else:
            self._check_stall()

    def _post(self, i: int, item: Any) -> None:
        """Deliver something to the loop from a callback or timer."""
        self._inbox.append((i, item))
        self._pump()

    def _begin(self, i: int) -> None:
        """Start step ``i``; with a store, its attempt goes into the journal first (it is
        committed in the next group, and always before the attempt's end)."""
        if self._journal is not None:
            self._recorded[i] = (self._attempts[i] + 1, time.time())
            self._journal.add(step=self._step_record(i, StepState.RUNNING))
        self._start(i)

    def _start(self, i: int) -> None:
        """Begin one attempt of step ``i``, which holds its slot."""
        action, check = self._actions[i], self._checks[i]
        policy = self._cache[i] if self._cache is not None else None
        needs_inputs = check is not None or action.bind is not no_inputs or policy is not None
        inputs = self._inputs(i) if needs_inputs else _NO_INPUTS
        if check is not None and not self._check(i, check, inputs):
            return
        if policy is not None and self._from_cache(i, policy, inputs):
            return
        self._attempts[i] += 1
        if not self._started[i]:
            self._started[i] = time.time()
        if self._listeners:
            self._emit(EventKind.STEP_STARTED, i)
        name = self._executor_of[i]
        try:
            args, kwargs = action.bind(inputs, self.params)
            if name == "inline":
                output = action.fn(*args, **kwargs)  # cheap: called right here, no hand-off
            else:
                fut = self._executor(name).submit(action.fn, args, kwargs, i)
        except Exception as exc:  # the step raised (inline), or could not be started
            self._failed(i, exc)
            return
        if name == "inline":
            self._succeeded(i, output)
            return
        self._futures[i] = fut
        if fut.done():  # an executor that refused the call at once: the pump settles it next
            self._inbox.append((i, fut))
            return
        if name in self._reporting:
            self._reported[fut] = i  # the executor reports it in a batch: see _on_reported
        else:
            fut.add_done_callback(functools.partial(self._post, i))
        timeout = self._steps[i].timeout
        if timeout is not None:
            self._timers[i] = self._loop.call_later(timeout, self._on_timeout, i, fut)

    def _from_cache(self, i: int, policy: CachePolicy, inputs: Mapping[str, Any]) -> bool:
        """Look step ``i`` up in the cache; True when that settled it (a hit, or a ``key``
        template that cannot render). Without lookups (``cache=False``) it only notes the key,
        so that the fresh output is stored under it."""
        try:
            key = policy.key(inputs)
        except ExpressionError as exc:  # a mistake in the workflow: fail the step, no retries
            self._attempts[i] += 1
            self._no_retry.add(i)
            self._failed(i, exc)
            return True
        if key is None:  # inputs JSON cannot hold: it runs (policy.key warned)
            return False
        self._cache_keys[i] = key
        if not self._use_cache:
            return False
        assert self._journal is not None  # policies exist only for runs with a store
        try:
            hit, output = lookup(self._journal.store, key, time.time(), policy.ttl)
        except StoreError as exc:
            self._store_failed(exc)
            self._failed(i, None)  # the run is stopping: cancelled
            return True
        if not hit:
            return False
        del self._cache_keys[i]
        self._attempts[i] += 1
        self._started[i] = self._started[i] or time.time()
        self._cached.add(i)
        self._outputs[i] = output
        handle_of = self._actions[i].handle
        handle = handle_of(output) if handle_of is not None else None
        self._finish(i, StepState.SUCCEEDED, handle=handle, reason="cached")
        return True

    def _remember(self, i: int, key: str, record: StepRecord) -> None:
        """Store step ``i``'s fresh output under its cache key (one JSON could not hold is
        not stored: the journal warned)."""
        policy = self._cache[i] if self._cache is not None else None
        if record.output_json is None or policy is None or self._journal is None:
            return
        try:
            remember(
                self._journal.store,
                key,
                record.output_json,
                time.time(),
                policy.ttl,
                self.run_id,
                record.step_id,
            )
        except StoreError as exc:
            self._store_failed(exc)

    def _settle(self, i: int, item: Any) -> None:
        """Apply one inbox item: the end of an attempt, a skip, a requeue or an abandon."""
        fut = self._futures.get(i)
        if fut is not None and fut is item:  # the common case: an attempt ended
            self._ended(i, fut)
        elif type(item) is _Handoff:
            self._handed_off(i, item)
        elif item is _REQUEUE:
            self._requeue(i)
        elif item is _UNPAUSE:
            if self.sched.state[i] is StepState.PAUSED and self._stop is None:
                self.sched.unpause(i)
        elif isinstance(item, asyncio.Future) and item in self._detached:
            self._detached_ended(item)
        elif self.sched.state[i].is_final():
            return  # settled already, e.g. cancelled while its result was on the way
        elif item is _SKIP:
            self._finish(i, StepState.SKIPPED, reason="condition false")
        elif item is _ABANDON:
            self._failed(i, None)

    def _detached_ended(self, item: asyncio.Future[Any]) -> None:
        """A thread ended after its step was settled: free its slot, drop its result."""
        if not item.cancelled():
            item.exception()  # retrieved, so asyncio does not log it as never retrieved
        self.sched.release_detached(self._detached.pop(item))

    def _ended(self, i: int, item: asyncio.Future[Any]) -> None:
        """An attempt's future completed: success, failure or cancellation."""
        timer = self._timers.pop(i, None)
        if timer is not None:
            timer.cancel()
        del self._futures[i]
        if item.cancelled():
            self._failed(i, None)
        elif item.exception() is not None:
            self._failed(i, item.exception())
        else:
            self._succeeded(i, item.result())

    # -- outcomes -----------------------------------------------------------------------------

    def _requeue(self, i: int) -> None:
        if i < 0:
            self._wakeup_armed = None
            self.sched.wake_rate_limited()
        elif self.sched.state[i] is StepState.RETRYING:
            self.sched.requeue(i)
            self._report()

    def _succeeded(self, i: int, output: Any) -> None:
        if self._timed_out:
            self._timed_out.discard(i)
        self._outputs[i] = output
        handle_of = self._actions[i].handle
        handle = handle_of(output) if handle_of is not None else None
        self._finish(i, StepState.SUCCEEDED, handle=handle)
        if self._ahead_allowed:
            self._adapt(self._finished[i] - self._started[i])

    def _failed(self, i: int, exc: BaseException | None) -> None:
        if isinstance(exc, StepPaused) and self._stop is None:
            self._pause(i, exc)
            return
        if isinstance(exc, StepSkipped) and self._stop is None:  # the step chose to skip
            self._timed_out.discard(i)
            self._finish(i, StepState.SKIPPED, reason=exc.reason)
            return
        stopped_under_it = exc is None and i not in self._timed_out
        error = self._step_error(i, exc)
        retryable = self._retryable(i, exc)
        if self._stop is not None and (stopped_under_it or retryable):
            # the run is stopping: a stopped attempt, or a retry it will not start, is cancelled
            self._finish(i, StepState.CANCELLED, reason=self._stop_reason)
            return
        if retryable:
            self._retry(i, exc)
            return
        self._errors[i] = error
        self._finish(i, StepState.FAILED, reason=error.reason)
        if self._steps[i].critical:
            self._first_failure = self._first_failure or error
            if self.settings.on_failure is OnFailure.FAIL_FAST:
                self._abort(RunStatus.FAILED, error, f"run failed at step {self.graph.ids[i]!r}")

    def _pause(self, i: int, exc: StepPaused) -> None:
        """The step waits for an answer: no slot, dependents wait, the rest of the run goes on."""
        self._timers.pop(i, None)
        self.sched.pause(i)
        if exc.wait is not None:  # while the run lives on, look again when the wait is over
            self._loop.call_later(max(exc.wait, 0.0), self._post, i, _UNPAUSE)
        if self._journal is not None:
            self._journal.add(step=self._step_record(i, StepState.PAUSED, reason=exc.prompt))
        self._emit(EventKind.STEP_PAUSED, i, prompt=exc.prompt)

    def _step_error(self, i: int, exc: BaseException | None) -> StepFailed:
        sid = self.graph.ids[i]
        if i in self._timed_out:
            return StepTimeout(sid, exc, f"timed out after {self._steps[i].timeout:g}s")
        if exc is None:
            return StepCancelled(sid, None, "cancelled")
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return StepFailed(sid, exc, reason, format_traceback(exc))

    def _retryable(self, i: int, exc: BaseException | None) -> bool:
        """Whether the retry policy allows another attempt after this failed one."""
        policy = self._steps[i].retry
        timed_out = i in self._timed_out
        self._timed_out.discard(i)
        if policy is None or self._attempts[i] > policy.retries or i in self._no_retry:
            return False
        if timed_out:
            return issubclass(TimeoutError, policy.retry_on)
        return isinstance(exc, policy.retry_on)

    def _retry(self, i: int, exc: BaseException | None) -> None:
        """Wait out the backoff without a slot, then compete for one again."""
        policy = self._steps[i].retry
        assert policy is not None  # _retryable said so
        delay = policy.backoff(self._attempts[i], random.random())
        self.sched.retry_later(i)
        if self._journal is not None:
            self._journal.add(step=self._step_record(i, StepState.RETRYING, error=exc))
        self._emit(EventKind.STEP_RETRYING, i, delay=delay, error=repr(exc))
        self._loop.call_later(delay, self._post, i, _REQUEUE)

    def _finish(
        self, i: int, state: StepState, *, handle: str | None = None, reason: str | None = None
    ) -> None:
        """Record a final state; the scheduler releases dependents and cascades skips.

        With a store, the step's slot is free at once but its dependents are released only
        once the store has committed the final state.
        """
        self._finished[i] = time.time()
        if self._journal is None:
            self._release(i, state, handle, reason)
            return
        if self.sched.state[i] is StepState.RUNNING:
            self.sched.vacate(i)
        record = self._step_record(i, state, reason=reason, error=self._errors.get(i))
        key = self._cache_keys.pop(i, None) if self._cache_keys else None
        if key is not None and state is StepState.SUCCEEDED:
            self._remember(i, key, record)
        self._journal.add(
            step=record, then=functools.partial(self._release, i, state, handle, reason)
        )

    def _release(self, i: int, state: StepState, handle: str | None, reason: str | None) -> None:
        self.sched.done(i, state, handle=handle, reason=reason)
        if self._listeners:
            self._report()

    def _report(self) -> None:
        """Stamp and announce the steps the scheduler made ready or final since last time.

        With listeners this runs after every change, so events keep their order; without,
        once per pump pass, only to stamp the steps a skip cascaded to.
        """
        log = self.sched.log
        if not log:
            return
        now, state, finished = time.time(), self.sched.state, self._finished
        for i in log:
            if not finished[i] and state[i].is_final():
                finished[i] = now
            if self._listeners:
                self._emit_state(i, state[i])
        log.clear()

    # -- stopping -------------------------------------------------------------------------------

    def _on_timeout(self, i: int, fut: asyncio.Future[Any]) -> None:
        if fut.done():
            return
        self._timed_out.add(i)
        self._stop_work(i, fut)

    def _stop_work(self, i: int, fut: asyncio.Future[Any]) -> None:
        """Stop an attempt; a thread that cannot stop keeps its slot until it ends."""
        if self._executor(self._executor_of[i]).stop(fut):
            return  # the future completes cancelled and settles as usual
        self._timers.pop(i, None)
        del self._futures[i]
        self._detached[fut] = self.sched.detach(i)
        self._post(i, _ABANDON)

    def _abort(self, status: RunStatus, error: PardagError, reason: str) -> None:
        """Stop the run: cancel what waits, stop what runs, start nothing new."""
        if self._stop is not None:
            return
        self._stop = (status, error)
        self._stop_reason = reason
        self.sched.cancel_pending(reason)
        self._report()
        for i in self.sched.running_steps():
            fut = self._futures.get(i)
            if fut is not None and not fut.done():
                self._stop_work(i, fut)
        self._pump()  # nothing may be running: only a backoff timer would wake the loop

    def _arm_run_timeout(self) -> asyncio.TimerHandle | None:
        limit = self.settings.timeout
        if limit is None:
            return None
        return self._loop.call_later(
            limit,
            self._abort,
            RunStatus.TIMED_OUT,
            RunTimedOut(limit),
            f"run timed out after {limit:g}s",
        )

    def _report_waits(self) -> None:
        waiting_on = self.sched.waiting_on
        for i in self.sched.waits:
            self._emit(EventKind.STEP_WAITING, i, waiting_on=waiting_on.get(i))
        self.sched.waits.clear()

    def _arm_wakeup(self, at: float) -> None:
        """Wake the loop when a rate-limited pool earns its next token."""
        if self._wakeup_armed is None or at < self._wakeup_armed:
            self._wakeup_armed = at
            self._loop.call_at(_loop_time(self._loop, at), self._post, -1, _REQUEUE)

    def _check_stall(self) -> None:
        """Fail loudly instead of hanging if nothing can make progress (a bug if reached)."""
        if self._futures or self._detached or self._wakeup_armed is not None:
            return
        if self._journal is not None and self._journal.busy:
            return
        if any(s is StepState.RETRYING for s in self.sched.state):
            return
        if self.sched.paused:  # only what waits for an answer is left: the run pauses
            self._paused = True
            self._all_final.set_result(None)
            return
        stuck = [self.graph.ids[i] for i, s in enumerate(self.sched.state) if not s.is_final()]
        raise RuntimeError(f"pardag stalled with steps {stuck[:10]} not final; please report this")

    # -- helpers --------------------------------------------------------------------------------

    def _inputs(self, i: int) -> dict[str, Any]:
        preds = self.graph.preds[i]
        if not preds:
            return {}
        ids, out, state = self.graph.ids, self._outputs, self.sched.state
        return {ids[p]: out[p] for p in preds if state[p] is StepState.SUCCEEDED}

    def _check(
        self,
        i: int,
        check: Callable[[Mapping[str, Any], Mapping[str, Any]], bool],
        inputs: Mapping[str, Any],
    ) -> bool:
        """Evaluate the step's ``when``; False means it is skipped (or failed, if it raised)."""
        try:
            ok = check(inputs, self.params)
        except Exception as exc:  # a broken precondition fails the step, once: no retries
            self._attempts[i] += 1
            self._no_retry.add(i)
            self._failed(i, exc)
            return False
        if not ok:
            self._post(i, _SKIP)
        return bool(ok)

    def _pick_executor(self, step: Step, action: Action) -> str:
        """The step's own choice; else the kind's, unless it is the plain-function default
        ``threads``, which the run's ``executor`` setting replaces (a kind that asks for
        ``async``, ``inline`` or a code step's worker ``processes`` needs that one)."""
        if step.executor is not None or action.executor != "threads":
            return action.executor
        return self.settings.executor or action.executor

    def _executor(self, name: str) -> Executor:
        ex = self._executors.get(name)
        if ex is None:
            ex = self._executors[name] = create_executor(
                name, self.settings.max_concurrency or None
            )
            if ex.reports_done:
                self._reporting.add(name)
                ex.notify = self._on_reported
            if isinstance(ex, ThreadExecutor) and self._chain is not None:
                ex.follow, ex.on_follow = self._follow, self._on_follow
        return ex

    def _on_reported(self, futures: Sequence[asyncio.Future[Any]]) -> None:
        """An executor settled ``futures`` (on the loop): deliver them, then pump once."""
        reported, inbox = self._reported, self._inbox
        for fut in futures:
            i = reported.pop(fut, None)
            if i is not None:
                inbox.append((i, fut))
        self._pump()

    async def _close_executors(self) -> None:
        for ex in self._executors.values():
            await ex.aclose()
        while self._inbox:  # threads that ended during close release their slots
            self._settle(*self._inbox.popleft())

    def _scheduler(self, durations: Sequence[float] | None) -> Scheduler:
        s = self.settings
        pools = {
            name: Pool(*spec) if isinstance(spec, tuple) else Pool(spec)
            for name, spec in s.pools.items()
        }
        resources: list[Mapping[str, int]] = [step.resources for step in self.graph.steps]
        if not s.max_concurrency:  # auto: each executor's own capacity becomes a pool
            units: dict[str, dict[str, int]] = {}
            for i, name in enumerate(self._executor_of):
                cap = default_capacity(name)
                if cap is not None:
                    pool = f"executor:{name}"
                    pools.setdefault(pool, Pool(cap))  # _adapt may widen it
                    one = units.setdefault(name, {pool: 1})
                    resources[i] = {**resources[i], pool: 1} if resources[i] else one
        return Scheduler(
            self.graph,
            mode=s.mode,
            limit=s.max_concurrency or None,
            pools=pools,
            durations=durations,
            resources=resources,
        )

    # -- chains on threads ------------------------------------------------------------------

    def _chains(self) -> list[int] | None:
        """For each step, the step its thread may run next by itself (-1: none); see ``_follow``.

        Step ``j`` follows ``i`` when it is ``i``'s only dependent and ``i`` its only
        dependency, both are plain functions on threads with no timeout and no pool, ``j`` has
        no precondition, and the edge is not a branch. None when no listener-free dynamic or
        sequential run could use it.
        """
        if self._listeners or self.settings.mode is Mode.LEVELS:
            return None
        g, ex, steps = self.graph, self._executor_of, self._steps
        chain = [-1] * len(g.ids)
        found = False
        for i, succs in enumerate(g.succs):
            if len(succs) != 1 or ex[i] != "threads" or steps[i].timeout is not None:
                continue
            j = succs[0]
            if (
                len(g.preds[j]) == 1
                and ex[j] == "threads"
                and steps[j].timeout is None
                and self._checks[j] is None
                and (self._cache is None or self._cache[j] is None)
                and not steps[i].resources
                and not steps[j].resources
                and (i, j) not in g.handles
            ):
                chain[i] = j
                found = True
        return chain if found else None

    def _follow(self, i: int, output: Any) -> tuple[int, Callable[..., Any], Any, Any] | None:
        """On a worker thread that ran step ``i``: the call of the step to run next, or None.

        Only reads what does not change during the run, plus two racy looks (is the run
        stopping, does any step wait for a slot) whose stale answer only means a step starts
        as if it had been dispatched a moment earlier.
        """
        assert self._chain is not None
        j = self._chain[i]
        if j < 0 or self._stop is not None or self._heap:
            return None
        action = self._actions[j]
        inputs = _NO_INPUTS if action.bind is no_inputs else {self.graph.ids[i]: output}
        args, kwargs = action.bind(inputs, self.params)
        return j, action.fn, args, kwargs

    def _on_follow(
        self,
        fut: asyncio.Future[Any],
        output: Any,
        j: int,
        followed: asyncio.Future[Any],
        started: float,
    ) -> None:
        """On the loop: the call behind ``fut`` succeeded and its thread went on with ``j``."""
        i = self._reported.pop(fut, None)
        if i is not None:
            self._reported[followed] = j
            self._post(i, _Handoff(fut, output, j, followed, started))

    def _handed_off(self, i: int, item: _Handoff) -> None:
        """Settle ``i``'s success, then record its follower as running in the slot it freed."""
        j = item.step
        if self._futures.get(i) is not item.done:  # ``i`` was stopped meanwhile: the run stops
            if item.done in self._detached:
                self._detached_ended(item.done)
            self._detached[item.future] = self.sched.adopt(j)
            return
        del self._futures[i]
        self._succeeded(i, item.output)
        if self.sched.claim(j):
            self._attempts[j] += 1
            if not self._started[j]:
                self._started[j] = item.started
            self._futures[j] = item.future
        else:  # the run began to stop as the thread moved on: hold the slot until it ends
            self._detached[item.future] = self.sched.adopt(j)

    def _may_hand_over_ahead(self) -> bool:
        """Whether thread steps may be handed over ahead of free threads; see ``_adapt``.

        Only when every step is a plain function on threads, nobody listens (events must say
        exactly when a step starts), no step has a timeout (it must start with the step) and
        the mode is not sequential.
        """
        if self._listeners or self.settings.mode is Mode.SEQUENTIAL:
            return False
        if any(name != "threads" for name in self._executor_of):
            return False
        return all(step.timeout is None for step in self._steps)

    def _adapt(self, seconds: float) -> None:
        """Hand steps over ahead while steps are short, one slot at a time once they are not.

        For steps of microseconds, the hand-off between the event loop and a thread costs more
        than the step: handing ``_AHEAD`` steps per thread over at once lets a thread that
        finishes take the next straight away. For longer steps that gains nothing and would
        commit to an order early, before better (higher priority) steps become ready. Threads
        never run more than their number of steps at once either way; a step handed over ahead
        has ``started_at`` set when it was handed over.
        """
        self._step_time += (seconds - self._step_time) * 0.1
        factor = _AHEAD if self._step_time < _SHORT_STEP else 1
        if factor == self._ahead:
            return
        self._ahead = factor
        if self.settings.max_concurrency:
            self.sched.limit = self.settings.max_concurrency * factor
        elif "executor:threads" in self.sched.pools:
            self.sched.resize_pool("executor:threads", (default_capacity("threads") or 1) * factor)

    def _result(self, started: float) -> RunResult:
        ids = self.graph.ids
        state, reasons = self.sched.state, self.sched.reason

        def make(i: int) -> StepResult:
            return StepResult(
                ids[i],
                state[i],
                self._attempts[i],
                self._started[i] or None,
                self._finished[i] or None,
                self._errors.get(i),
                reasons.get(i),
                self._executor_of[i],
                i in self._cached,
            )

        steps = StepResults(ids, self.graph.index, make)
        outputs = Outputs(ids, self.graph.index, self._outputs, state)
        terminal = tuple(ids[i] for i in range(len(ids)) if not self.graph.succs[i])
        status, error = self._status()
        return RunResult(
            self.run_id,
            self.workflow,
            status,
            steps,
            outputs,
            terminal,
            error,
            started,
            time.time(),
            self.params,
        )

    # -- the run store ----------------------------------------------------------------------

    def _open_journal(self, journal: Journal, started: float) -> None:
        """Record the run (committed before any step starts) and start the writer."""
        owner = f"{socket.gethostname()}:{os.getpid()}"
        if self._resume is not None:  # a resumed run: it is recorded already
            update = RunUpdate(self.run_id, status=RunStatus.RUNNING.value, owner=owner)
            journal.store.write(runs=[update])
        else:
            record = self._record or RunRecord(self.run_id, self.workflow, "running", started)
            record.status = RunStatus.RUNNING.value
            record.settings_json = encode_output(_settings_dict(self.settings), repr) or "{}"
            record.params_json = encode_output(self.params, repr) or "{}"
            record.owner = owner
            journal.store.create_run(record)
        self.context.state["answers"] = journal.store.get_answers(self.run_id)
        journal.start(self._loop, self._store_failed, self._pump)

    def _restore(self, records: Sequence[StepRecord]) -> None:
        """Steps whose final state an earlier process of this run committed keep it, and
        their outputs; a success whose output was not stored runs again."""
        final: dict[int, tuple[StepState, str | None, str | None]] = {}
        for rec in records:
            i = self.graph.index.get(rec.step_id)
            if i is None:
                continue
            state = StepState(rec.state)
            self._attempts[i] = rec.attempt  # a step run again gets the next attempt number
            if not state.is_final() or state is StepState.CANCELLED:
                continue
            handle = None
            if state is StepState.SUCCEEDED:
                if not rec.output_stored:
                    continue
                output = json.loads(rec.output_json) if rec.output_json is not None else None
                self._outputs[i] = output
                if rec.cached:
                    self._cached.add(i)
                handle_of = self._actions[i].handle
                handle = handle_of(output) if handle_of is not None else None
            elif rec.error is not None:
                self._errors[i] = StepFailed(rec.step_id, None, rec.error, rec.traceback or "")
            self._started[i] = rec.started_at or 0.0
            self._finished[i] = rec.finished_at or 0.0
            final[i] = (state, handle, rec.reason)
        self._kept = set(final)
        self.sched.restore(final)

    async def _close_journal(self, journal: Journal, result: RunResult) -> None:
        """Record the steps never started (skipped, cancelled) and the run's end; stop."""
        state = self.sched.state
        for i in range(len(state)):
            if i not in self._recorded and i not in self._kept and state[i].is_final():
                journal.add(step=self._step_record(i, state[i], reason=self.sched.reason.get(i)))
        error = str(result.error) if result.error is not None else None
        end = RunUpdate(self.run_id, status=result.status.value, finished_at=time.time())
        end.error = error
        journal.add(run=end)
        await journal.aclose()

    def _step_record(
        self,
        i: int,
        state: StepState,
        *,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> StepRecord:
        sid = self.graph.ids[i]
        attempt, started = self._recorded.get(i, (self._attempts[i], 0.0))
        record = StepRecord(self.run_id, sid, attempt, state.value, self._executor_of[i])
        record.started_at = started or None
        record.reason = reason
        if state is not StepState.RUNNING:
            record.finished_at = time.time()
        if state is StepState.SUCCEEDED:
            value = self._outputs[i]
            record.cached = i in self._cached
            record.output_json = encode_output(value, self._encoder)
            if record.output_json is None:
                record.output_stored = False
                warn_not_stored(sid, value)
        if error is not None:
            cause = error.cause if isinstance(error, StepFailed) else error
            record.error = str(error)
            record.traceback = format_traceback(cause) if cause is not None else None
        return record

    def _store_failed(self, exc: BaseException) -> None:
        """A commit failed: the run cannot keep its promises, so it stops, saying why."""
        error = PardagError(f"the run store failed, so the run stopped: {exc}")
        self._abort(RunStatus.FAILED, error, "run stopped: the run store failed")

    def _status(self) -> tuple[RunStatus, PardagError | None]:
        if self._stop is not None:
            return self._stop
        if self._paused:
            return RunStatus.PAUSED, None
        if self._first_failure is not None:
            return RunStatus.FAILED, self._first_failure
        return RunStatus.SUCCEEDED, None

    # -- events -------------------------------------------------------------------------------

    def _emit(self, kind: EventKind, i: int | None, **data: Any) -> None:
        if not self._listeners:
            return
        step = None if i is None else self.graph.ids[i]
        attempt = 0 if i is None else self._attempts[i]
        event = Event(kind, self.run_id, time.monotonic(), step, attempt, data)
        for listener in self._listeners:
            try:
                listener.on_event(event)
            except Exception as exc:  # a listener must never break a run
                self._loop.call_exception_handler(
                    {"message": "pardag listener failed", "exception": exc}
                )

    def _emit_state(self, i: int, state: StepState) -> None:
        reason = self.sched.reason.get(i)
        self._emit(_STATE_EVENT[state], i, **({"reason": reason} if reason else {}))


_STATE_EVENT = {
    StepState.READY: EventKind.STEP_READY,
    StepState.SUCCEEDED: EventKind.STEP_SUCCEEDED,
    StepState.FAILED: EventKind.STEP_FAILED,
    StepState.SKIPPED: EventKind.STEP_SKIPPED,
    StepState.CANCELLED: EventKind.STEP_CANCELLED,
}


def _actions(steps: Sequence[Step], ctx: RunContext) -> list[Action]:
    """Each step's action; steps that call one input-less function share one action."""
    shared: dict[tuple[Callable[..., Any], str | None], Action] = {}
    out = []
    for step in steps:
        fn = step.fn
        if step.kind == "python" and fn is not None and (fn, step.executor) in shared:
            out.append(shared[(fn, step.executor)])
            continue
        action = action_for(step, ctx)
        if step.kind == "python" and fn is not None and action.bind is no_inputs:
            shared[(fn, step.executor)] = action
        out.append(action)
    return out


HISTORY_RUNS = 10
"""Recent runs of a workflow whose step durations order its next run (duration history)."""


def past_durations(
    store: Store | None, workflow: str, graph: Graph, mode: Mode
) -> list[float] | None:
    """Each step's ``estimate``, else its mean duration in the workflow's recent recorded runs.

    The dynamic order runs first what has the longest remaining path; without estimates every
    step counts 1, which knows nothing of a slow step. With a run store the past says more: a
    step never seen counts as the typical step of the workflow. None (estimates or 1) without
    a store, without history, in ``levels`` mode, or when every step has an estimate.
    """
    if store is None or mode is Mode.LEVELS or all(s.estimate is not None for s in graph.steps):
        return None
    try:
        past = store.step_durations(workflow, HISTORY_RUNS)
    except StoreError:
        return None  # only an order is lost; the journal reports a store that is really down
    if not past:
        return None
    typical = statistics.median(past.values())
    return [s.estimate if s.estimate is not None else past.get(s.id, typical) for s in graph.steps]


def _settings_dict(settings: Settings) -> dict[str, Any]:
    return {f: getattr(settings, f) for f in Settings.__dataclass_fields__}


def _freeze_heap(steps: int) -> bool:
    """For a big run, move what exists now (the graph) out of the collector's sight.

    Otherwise every collection during the run walks the whole graph again. Skipped when the
    program froze objects itself, so that its own ``gc.freeze`` is left alone.
    """
    if steps < _FREEZE_AT or gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _loop_time(loop: asyncio.AbstractEventLoop, monotonic_at: float) -> float:
    return loop.time() + (monotonic_at - time.monotonic())


def _precondition(step: Step) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None:
    """The step's ``when`` as a check over (inputs, params), or None when it has none."""
    when = step.when
    if when is None:
        return None
    if isinstance(when, str):
        from pardag.expressions import compile_expression, expression_names

        expr = compile_expression(when, where="when")

        def check_expr(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
            return bool(expr.evaluate(expression_names(inputs, params)))

        return check_expr
    binder = bind_function(when, step.depends_on)
    if isinstance(binder, str):
        raise ArgumentError(f"step {step.id!r}: when= {binder}")
    if inspect.iscoroutinefunction(when):
        raise ArgumentError(f"step {step.id!r}: when= must be a plain function, not async def")

    def check_fn(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        args, kwargs = binder(inputs, params)
        return bool(when(*args, **kwargs))

    return check_fn


def resume_run(wf: Workflow, resumption: Resumption, **overrides: Any) -> RunResult:
    """Go on with a recorded run in this process (``pardag.resume``)."""
    return run_sync(wf, _resume=resumption, **overrides)


def run_sync(wf: Workflow, **overrides: Any) -> RunResult:
    """``Workflow.run``: run on a fresh event loop; Ctrl-C cancels cleanly, a second exits."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ArgumentError(
            "wf.run() was called inside a running event loop; use "
            "'await wf.run_async(...)' there instead"
        )
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(_run_with_signals(wf, overrides))
    except KeyboardInterrupt:  # the second Ctrl-C: leave now, without waiting for threads
        _close_loop(loop, wait_for_threads=False)
        raise
    _close_loop(loop, wait_for_threads=True)
    return result


async def run_workflow(wf: Workflow, overrides: dict[str, Any]) -> RunResult:
    """``Workflow.run_async``: one run, recorded when a store is given or configured."""
    runner, close = new_runner(wf, overrides)
    try:
        return await runner.run()
    finally:
        close()


def new_runner(wf: Workflow, overrides: dict[str, Any]) -> tuple[Runner, Callable[[], None]]:
    """A runner for ``wf`` with ``overrides`` (settings, ``listeners``, ``params``, ``store``,
    ``encoder``), and what to call once it is done (closing a store it opened)."""
    from pardag.model import with_overrides
    from pardag.recording import open_run_store, run_record

    listeners = overrides.pop("listeners", ())
    params = {**wf.params, **(overrides.pop("params", None) or {})}
    encoder = overrides.pop("encoder", None)
    use_cache = overrides.pop("cache", True)
    if not isinstance(use_cache, bool):
        raise ArgumentError(
            f"cache={use_cache!r} is not valid; give cache=False to run every step without "
            "looking in the cache (fresh outputs still refresh it), or leave it out"
        )
    resumed: Resumption | None = overrides.pop("_resume", None)
    store, owned = open_run_store(overrides.pop("store", None))
    settings = with_overrides(wf.settings, overrides)
    graph = wf.compile()
    extra: dict[str, Any] = {}
    if resumed is not None:
        extra = {
            "record": resumed.record,
            "resume": resumed.steps,
            "first_event": resumed.first_event,
            "paused_since": resumed.paused_since,
        }
    elif store is not None:
        extra = {"record": run_record(wf, uuid.uuid4().hex)}
    runner = Runner(
        wf.name,
        graph,
        settings,
        listeners,
        params,
        store=store,
        encoder=encoder,
        cache=use_cache,
        **extra,
    )
    return runner, (store.close if owned and store is not None else _nothing)


def _nothing() -> None:
    pass


async def _run_with_signals(wf: Workflow, overrides: dict[str, Any]) -> RunResult:
    runner, close = new_runner(wf, overrides)
    loop = asyncio.get_running_loop()
    presses = 0

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            runner.cancel("interrupted (Ctrl-C); press Ctrl-C again to exit at once")
        else:
            loop.remove_signal_handler(signal.SIGINT)
            raise KeyboardInterrupt

    handled = threading.current_thread() is threading.main_thread() and os.name == "posix"
    if handled:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await runner.run()
    finally:
        close()
        if handled:
            loop.remove_signal_handler(signal.SIGINT)


def _close_loop(loop: asyncio.AbstractEventLoop, *, wait_for_threads: bool) -> None:
    """Close the run's loop; after a second Ctrl-C, give tasks a moment but not threads."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        if wait_for_threads:
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
