"""The ``Runner``: the one place that changes a run's state.

Executors report each finished attempt into one inbox and wake the loop; timers (timeouts,
backoffs, rate windows), the journal (commits, cache answers) and worker threads running a
chain do the same, each with a typed message (``pardag.runner.state``). The loop then reads
as a sentence: settle what arrived, start everything the scheduler says is ready, until every
step is final. A step's whole path is ``_pump`` -> ``_begin``/``_start`` -> ``_launch`` ->
(an executor) -> ``_settle`` -> ``_succeeded``/``_failed`` -> ``_finish`` -> ``_release``.

Stopping work. A timed-out or cancelled step is stopped for real where its executor can (a
coroutine is cancelled, a worker process killed). A thread cannot be stopped: the step is
recorded as failed or cancelled at once, but its slot stays taken until the function returns,
and the run does not return before that.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from pardag.errors import ExpressionError
from pardag.events import EventKind
from pardag.kinds import RunContext
from pardag.kinds.base import no_inputs
from pardag.recording import Resumption
from pardag.results import RunResult
from pardag.runner.alarms import Alarms
from pardag.runner.chains import Follower, HandAhead
from pardag.runner.decisions import (
    Cancel,
    Fail,
    Pause,
    Retry,
    SkipItself,
    after_failure,
    run_status,
    stalled,
)
from pardag.runner.events import Announcer
from pardag.runner.mapping import Mapper, Settlers, has_maps
from pardag.runner.outcome import build_result
from pardag.runner.plan import Check, Plan, make_scheduler
from pardag.runner.records import RunRecords
from pardag.runner.state import (
    Abandon,
    CacheAnswer,
    Ended,
    Handoff,
    Message,
    RateWake,
    Requeue,
    RunState,
    Skip,
    Stop,
    Unpause,
)
from pardag.runner.workers import Workers
from pardag.secrets import secrets_of
from pardag.states import ExecutorName, OnFailure, StepState

__all__ = ["Runner"]

_FREEZE_AT = 5_000
"""Runs with at least this many steps freeze the heap for their duration; see _freeze_heap."""
_SLICE = 0.02
"""Seconds the hot loop may run before it lets the event loop serve timers and signals."""
_NO_INPUTS: dict[str, Any] = {}
RUNNING, SUCCEEDED, FAILED = StepState.RUNNING, StepState.SUCCEEDED, StepState.FAILED


class Runner:
    """Runs one compiled workflow once. Create, then ``await runner.run()``."""

    def __init__(
        self,
        plan: Plan,
        context: RunContext,
        state: RunState,
        events: Announcer,
        records: RunRecords | None,
        resumption: Resumption | None = None,
    ) -> None:
        """Assembled by ``pardag.runner.entry.new_runner``; ``records`` is None for a run
        without a store, ``resumption`` what an earlier process of the run left."""
        self.plan, self.context, self.state, self.clock = plan, context, state, context.clock
        self.run_id, self.params = context.run_id, context.params
        self.sched = make_scheduler(plan)
        self._events, self._records, self._resumption = events, records, resumption
        self._fail_fast = plan.settings.on_failure is OnFailure.FAIL_FAST
        self._inbox: deque[Message] = deque()
        self._pumping = False
        timeouts = [s.timeout for s in plan.graph.steps]
        self._alarms = Alarms(self.clock, self._post, timeouts)
        settlers = Settlers(self._succeeded, self._failed, self._finish)
        parts = (plan, state, self.sched, events, timeouts, settlers, records, resumption)
        self._maps = Mapper(*parts) if has_maps(plan.graph) else None
        self._workers = Workers(plan, state, self.run_id, self._inbox, self._pump, events, records)
        if plan.chain is not None:
            heap, reported = self.sched.ready_queue, self._workers.reported
            args = (plan.graph, plan.actions, self.params, state, heap, reported, self._post)
            self._workers.follower = Follower(plan.chain, *args)
        self._ahead = HandAhead(plan.settings, self.sched.pools) if plan.hand_ahead else None
        self._held_back: dict[int, list[int]] = {}  # see _abort

    # -- public -------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run every step to a final state and return the result."""
        started = self.clock.time()
        if self._records is not None:
            resuming = self._resumption is not None
            self.context.answers = self._records.open(
                started, resuming, self.params, self._store_failed, self._pump
            )
        watch = (self.state, self.plan.executor_of, self._inbox, self._records)
        self.clock.watch(functools.partial(_only_waits, *watch))
        self._events.emit(EventKind.RUN_STARTED, None)
        deadline = self._alarms.run_limit(self.plan.settings.timeout, self._abort)
        frozen = _freeze_heap(len(self.plan.graph.ids))
        try:
            await self._drive()
        except BaseException:
            self.cancel("cancelling the task that runs the workflow")
            raise
        finally:
            if frozen:
                gc.unfreeze()
            if deadline is not None:
                deadline.cancel()
            self.clock.watch(lambda: False)  # over: a virtual clock fires no timer left (backoff)
            await self._close_executors()
            await self.context.aclose()
        result = self._result(started)
        self._events.emit(EventKind.RUN_FINISHED, None, status=result.status.value)
        if self._records is not None:
            error = str(result.error) if result.error is not None else None
            await self._records.close(self.sched, result.status, error)
        return result

    def cancel(self, by: str = "the caller") -> None:
        """Cancel the run from its loop: stop what runs, start nothing (``cancelled by {by}``)."""
        self._abort(Stop.cancelled(by))

    def leave(self) -> None:
        """Leave now (a second Ctrl-C), the run and its unfinished steps recorded cancelled."""
        stop = self.state.stop or Stop.cancelled("the caller")
        if self._records is not None:
            self._records.leave(self.sched, stop)

    # -- the loop -----------------------------------------------------------------------------

    async def _drive(self) -> None:
        self._all_final = asyncio.get_running_loop().create_future()
        if (resumed := self._resumption) is not None and resumed.steps and self._records:
            self.sched.restore(self._records.restore(resumed.steps))
        self.sched.prepare()
        self._report()
        self._pump()
        await self._all_final

    def _pump(self) -> None:
        """The hot loop: settle what arrived, start what is ready, until neither is left.

        It runs inside whichever callback delivered something (a step's end, a timer), so a
        completion is handled without another trip through the event loop. After a slice of
        ``_SLICE`` seconds it hands the loop back (timers, signals) and continues next turn
        (a virtual clock's time stands still while the run works: the pump then yields only
        once nothing is left, which a test does not mind).
        """
        if self._pumping or self._all_final.done():
            return
        self._pumping = True
        sched, inbox, monotonic = self.sched, self._inbox, self.clock.monotonic
        try:
            deadline = monotonic() + _SLICE
            while True:
                while inbox:
                    self._settle(inbox.popleft())
                now = monotonic()
                ready = sched.get_ready(now)
                if sched.waits:
                    self._events.waits(sched)
                if not ready:
                    break
                for i in ready:
                    self._begin(i)
                if now > deadline:
                    asyncio.get_running_loop().call_soon(self._pump)
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
            self._alarms.rate_window(sched.wakeup_at)
        if not sched.unfinished:
            self._all_final.set_result(None)
        else:
            self._check_stall()

    def _post(self, message: Message) -> None:
        """Deliver a message to the loop from a callback or timer."""
        self._inbox.append(message)
        self._pump()

    def _settle(self, message: Message) -> None:
        """Apply one message: see ``pardag.runner.state`` for what each one means."""
        st, sched = self.state, self.sched
        if type(message) is Ended:  # nearly every message: spared the pattern matching
            i, fut = message
            if st.futures.get(i) is fut:
                self._ended(i, fut)
            elif fut in st.detached:
                self._detached_ended(fut)
            return
        match message:
            case Handoff(i, done, j, fut, started):  # a chain: j ran on in i's thread
                settled = st.futures.get(i) is done  # not stopped meanwhile
                self._settle(Ended(i, done))
                if settled and sched.claim(j):
                    st.begin_attempt(j, started)
                    st.futures[j] = fut
                else:  # the run began to stop as the thread moved on: hold the slot until it ends
                    st.detached[fut] = sched.adopt(j)
            case CacheAnswer():
                self._cache_answered(message)
            case Requeue(i) if sched.state[i] is StepState.RETRYING:
                sched.requeue(i)
                self._report()
            case RateWake():
                self._alarms.rate_woke()
                sched.wake_rate_limited()
            case Unpause(i) if sched.state[i] is StepState.PAUSED and st.stop is None:
                sched.reason.pop(i, None)  # the question no longer stands
                sched.unpause(i)
            case Skip(i) if not sched.state[i].is_final():
                self._finish(i, StepState.SKIPPED, reason="condition false")
            case Abandon(i) if not sched.state[i].is_final():
                self._failed(i, None)

    # -- starting a step ------------------------------------------------------------------------

    def _begin(self, i: int) -> None:
        """Start step ``i``; with a store, its attempt goes into the journal first (it is
        committed in the next group, and always before the attempt's end)."""
        if self._records is not None:
            self._records.started(i)
        if self._maps is not None and i in self._maps.sources:  # a mapped step: expand it
            self._maps.start(i, self.clock.time())
            return
        self._start(i)

    def _start(self, i: int) -> None:
        """Begin one attempt of step ``i``, which holds its slot: its ``when``, then the cache,
        then the call."""
        plan = self.plan
        action, check = plan.actions[i], plan.checks[i]
        policy = plan.cache[i] if plan.cache is not None else None
        needs_inputs = check is not None or action.bind is not no_inputs or policy is not None
        inputs = self.state.inputs(i, plan.graph, self.sched.state) if needs_inputs else _NO_INPUTS
        if check is not None and not self._check(i, check, inputs):
            return
        if policy is not None and self._records is not None:
            try:  # the cache's answer comes back as a message
                if self._records.look_up(i, policy, inputs, plan.lookups, self._inbox.append):
                    return
            except ExpressionError as exc:  # a key template that cannot render: no retries
                self._failed_by_workflow(i, exc)
                return
        self._launch(i, inputs)

    def _launch(self, i: int, inputs: Mapping[str, Any]) -> None:
        """Hand step ``i``'s call to its executor (an inline one answers at once)."""
        st, plan = self.state, self.plan
        if st.stop is not None:  # stopped while its cache was looked up
            self._failed(i, None)
            return
        st.begin_attempt(i, self.clock.time())
        name, action = plan.executor_of[i], plan.actions[i]
        if plan.exact_events and name != ExecutorName.DASK:  # dask: its worker's word
            self._events.emit(EventKind.STEP_STARTED, i)
        fn = action.fn if self._records is None else self._records.capture(i, action.fn, name)
        fn = self._alarms.bounded(fn, i, name)  # its templates stop at its deadline
        try:
            ex = self._workers.get(name)
            args, kwargs = action.bind(inputs, self.params)
            if ex.synchronous:
                output = ex.call(fn, args, kwargs)  # cheap: right here, no hand-off
            else:
                st.futures[i] = fut = self._workers.submit(ex, fn, args, kwargs, i)
        except Exception as exc:  # the step raised (inline), or could not be started
            self._failed(i, exc)
            return
        if ex.synchronous:
            self._succeeded(i, output)
            return
        timeout = plan.graph.steps[i].timeout
        if timeout is not None and not fut.done():
            st.timers[i] = self._alarms.timeout(timeout, self._on_timeout, i, fut)

    def _check(self, i: int, check: Check, inputs: Mapping[str, Any]) -> bool:
        """Evaluate the step's ``when``; False means it is skipped (or failed, if it raised)."""
        try:
            ok = self._alarms.bounded(check, i)(inputs, self.params)
        except Exception as exc:  # a broken precondition fails the step, once: no retries
            self._failed_by_workflow(i, exc)
            return False
        if not ok:
            self._post(Skip(i))
        return bool(ok)

    def _cache_answered(self, answer: CacheAnswer) -> None:
        """The cache answered for step ``i``: a hit settles it, a miss runs it."""
        i, st = answer.step, self.state
        if answer.error is not None:
            self._store_failed(answer.error)
        if st.stop is not None or not answer.hit:
            self._launch(i, answer.inputs)  # cancelled at once when the run is stopping
            return
        st.begin_attempt(i, self.clock.time())
        st.cached.add(i)
        self._succeeded(i, answer.output, reason="cached")

    # -- outcomes -------------------------------------------------------------------------------

    def _ended(self, i: int, fut: asyncio.Future[Any]) -> None:
        """An attempt's future completed: success, failure or cancellation."""
        st = self.state
        if st.timers:  # most runs arm no step timeout
            self._alarms.cancel(st.timers.pop(i, None))
        del st.futures[i]
        if fut.cancelled():
            self._failed(i, None)
        elif fut.exception() is not None:
            self._failed(i, fut.exception())
        else:
            self._succeeded(i, fut.result())

    def _succeeded(self, i: int, output: Any, reason: str | None = None) -> None:
        st = self.state
        if st.timed_out:
            st.timed_out.discard(i)
        st.outputs[i] = output
        handle_of = self.plan.actions[i].handle
        handle = handle_of(output) if handle_of is not None else None
        self._finish(i, SUCCEEDED, handle=handle, reason=reason)
        if self._ahead is not None:
            self._ahead.observe(st.finished[i] - st.started[i], self.sched)

    def _failed(self, i: int, exc: BaseException | None) -> None:
        """An attempt failed (``exc``) or was stopped (None): apply what ``after_failure``
        decides."""
        st, step = self.state, self.plan.graph.steps[i]
        facts = (st.attempts[i], i in st.timed_out, i not in st.no_retry, st.stop)
        decision = after_failure(step, exc, *facts, fail_fast=self._fail_fast, rand=random.random)
        if not isinstance(decision, Pause):
            st.timed_out.discard(i)
        match decision:
            case Pause():
                self._pause(i, decision)
            case SkipItself(reason):
                self._finish(i, StepState.SKIPPED, reason=reason)
            case Cancel(reason):
                self._finish(i, StepState.CANCELLED, reason=reason)
            case Retry(delay):
                self._retry(i, exc, delay)
            case Fail(error, abort):
                st.errors[i] = error = secrets_of(self.context).masker.error(error)
                self._finish(i, FAILED, reason=error.reason)
                spent = self._maps is not None and self._maps.escalates(i)  # map's allowance
                if step.critical or spent:
                    st.first_failure = st.first_failure or error
                if abort or (spent and self._fail_fast):  # with a store: announced after it
                    self._abort(Stop.failed_at(error), cause=i if self._records else None)

    def _failed_by_workflow(self, i: int, exc: Exception) -> None:
        """A mistake in the workflow (its ``when`` or cache key) fails the step, once."""
        self.state.attempts[i] += 1
        self.state.no_retry.add(i)
        self._failed(i, exc)

    def _pause(self, i: int, pause: Pause) -> None:
        """The step waits for an answer: no slot, dependents wait, the rest of the run goes on."""
        self.state.timers.pop(i, None)
        self.sched.pause(i)
        self.sched.reason[i] = pause.prompt  # the result says what it waits for, as the store
        if pause.wait is not None:  # while the run lives on, look again when the wait is over
            self._alarms.answer_wait(i, pause.wait)
        if self._records is not None:
            self._records.waiting(i, StepState.PAUSED, reason=pause.prompt)
        self._events.emit(EventKind.STEP_PAUSED, i, prompt=pause.prompt)

    def _retry(self, i: int, exc: BaseException | None, delay: float) -> None:
        """Wait out the backoff without a slot, then compete for one again."""
        self.sched.retry_later(i)
        if self._records is not None:
            self._records.waiting(i, StepState.RETRYING, error=exc)
        self._events.emit(EventKind.STEP_RETRYING, i, delay=delay, error=repr(exc))
        self._alarms.backoff(i, delay)

    def _finish(
        self, i: int, state: StepState, *, handle: str | None = None, reason: str | None = None
    ) -> None:
        """Record a final state; the scheduler releases dependents and cascades skips. With a
        store, the slot is free at once, the dependents once the store committed the state."""
        self.state.finished[i] = self.clock.time()
        if self._records is None:
            self._release(i, state, handle, reason)
            return
        if self.sched.state[i] is RUNNING:
            self.sched.vacate(i)
        then = functools.partial(self._release, i, state, handle, reason)
        self._records.finished(i, state, reason, then)

    def _release(self, i: int, state: StepState, handle: str | None, reason: str | None) -> None:
        self.sched.done(i, state, handle=handle, reason=reason)
        if self.sched.fans_done and self._maps is not None:  # instances ended: their map
            self._maps.settle()
        if self._held_back and i in self._held_back:
            self.sched.log.extend(self._held_back.pop(i))  # the cancels it caused, after it
        if self.plan.exact_events:
            self._report()

    def _report(self) -> None:
        """Stamp and announce the steps the scheduler made ready or final since last time:
        after every change with exact events (they keep their order), else once per pump pass,
        only to stamp the steps a skip cascaded to."""
        log = self.sched.log
        if not log:
            return
        now, states, finished = self.clock.time(), self.sched.state, self.state.finished
        listening, reasons = self._events.listening, self.sched.reason
        for i in log:
            if not finished[i] and states[i].is_final():
                finished[i] = now
            if listening:
                self._events.state(i, states[i], reasons.get(i))
        log.clear()

    # -- stopping -------------------------------------------------------------------------------

    def _on_timeout(self, i: int, fut: asyncio.Future[Any]) -> None:
        if fut.done():
            return
        self.state.timed_out.add(i)
        self._stop_work(i, fut)

    def _stop_work(self, i: int, fut: asyncio.Future[Any]) -> None:
        """Stop an attempt; a thread that cannot stop keeps its slot until it ends."""
        if self._workers.get(self.plan.executor_of[i]).stop(fut):
            return  # the future completes cancelled and settles as usual
        st = self.state
        st.timers.pop(i, None)
        del st.futures[i]
        st.detached[fut] = self.sched.detach(i)
        self._post(Abandon(i))

    def _abort(self, stop: Stop, cause: int | None = None) -> None:
        """Stop the run: cancel what waits, stop what runs, start nothing new. The cancels are
        announced after ``cause``, a failed step whose end waits for its commit."""
        st, log = self.state, self.sched.log
        if st.stop is not None:
            return
        st.stop = stop
        before = len(log)
        self.sched.cancel_pending(stop.reason)
        if self.sched.fans_done and self._maps is not None:
            self._maps.settle()
        if cause is not None:
            self._held_back[cause] = log[before:]
            del log[before:]
        self._report()
        for i in self.sched.running_steps():
            fut = st.futures.get(i)
            if fut is not None and not fut.done():
                self._stop_work(i, fut)
        self._pump()  # nothing may be running: only a backoff timer would wake the loop

    def _store_failed(self, exc: BaseException) -> None:
        """A commit failed: the run cannot keep its promises, so it stops, saying why."""
        self._abort(Stop.store_failed(exc))

    def _check_stall(self) -> None:
        """Pause the run when only steps waiting for an answer are left; fail loudly instead
        of hanging when nothing can make progress (a bug if reached)."""
        st, sched = self.state, self.sched
        if st.futures or st.detached or self._alarms.rate_armed is not None:
            return  # the common case, asked after every pump: something will wake the run
        busy = self._records is not None and self._records.busy
        verdict = stalled(sched.state, sched.paused, busy, self.plan.graph.ids)
        if verdict == "paused":
            st.paused = True
            self._all_final.set_result(None)
        elif verdict is not None:
            raise RuntimeError(verdict)

    # -- executors and their reports ----------------------------------------------------------

    def _detached_ended(self, fut: asyncio.Future[Any]) -> None:
        """A thread ended after its step was settled: free its slot, drop its result."""
        if not fut.cancelled():
            fut.exception()  # retrieved, so asyncio does not log it as never retrieved
        self.sched.release_detached(self.state.detached.pop(fut))

    async def _close_executors(self) -> None:
        await self._workers.aclose()
        while self._inbox:  # threads that ended during close release their slots
            self._settle(self._inbox.popleft())

    def _result(self, started: float) -> RunResult:
        st, times = self.state, (started, self.clock.time())
        ending = run_status(st.stop, st.paused, st.first_failure)
        args = (self.plan, st, self.sched, self.run_id, self.params, times, ending)
        return build_result(*args, secrets_of(self.context).masker, self._maps)  # no secret


def _only_waits(
    st: RunState, ex: Sequence[str], inbox: deque[Message], records: RunRecords | None
) -> bool:
    """True when nothing works for the run: no step on a thread or a process (an async step
    may be awaiting time), the store owes nothing, no message waits (a virtual clock may then
    move time on)."""
    if st.detached or inbox or (records is not None and records.busy):
        return False
    return all(ex[i] == ExecutorName.ASYNC for i in st.futures)


def _freeze_heap(steps: int) -> bool:
    """For a big run, move what exists now (the graph) out of the collector's sight.

    Otherwise every collection during the run walks the whole graph again. Skipped when the
    program froze objects itself, so that its own ``gc.freeze`` is left alone.
    """
    if steps < _FREEZE_AT or gc.get_freeze_count():
        return False
    gc.freeze()
    return True
