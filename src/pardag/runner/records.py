"""What a durable run writes to its journal, and what it reads back when it is resumed.

``RunRecords`` stands between the runner and its ``Journal``: it opens the run in the store
(or takes over a recorded one), records each attempt as it starts, waits, ends, stores fresh
outputs in the step output cache and asks the cache for stored ones, and at the end records
the steps that never started and the run's outcome. ``restore`` puts back what an earlier
process of the run committed. The runner calls it; only the runner changes run state.

Each attempt that runs gets a ``StepLog`` (``capture``): what the step writes goes into the
journal in pieces as it runs, and the rest when the attempt ends, before its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pardag.caching import CachePolicy, Encoder, cache_entry
from pardag.clock import Clock
from pardag.errors import StepFailed
from pardag.executors.base import format_traceback
from pardag.executors.dask_data import KeptOnCluster
from pardag.journal import Journal, Then, warn_not_stored
from pardag.owner import this_process
from pardag.recording import Retried, encode_json, settings_json
from pardag.runner.plan import Plan
from pardag.runner.state import CacheAnswer, RunState, Stop
from pardag.scheduler import Scheduler
from pardag.secrets import Secrets
from pardag.states import ExecutorName, RunStatus, StepState
from pardag.steplog import FLUSH_EVERY, InWorker, Later, StepLog, captured, install
from pardag.stepprocs import NOTE_ATTR, Note, watching
from pardag.store.base import Answer, LogRecord, RunRecord, RunUpdate, StepRecord

__all__ = ["RunRecords"]

_KEPT_PROCESSES = 16
"""Processes kept on an attempt's record (the latest): a step starts them one at a time."""

_LEAVING_WAIT = 5.0
"""Seconds a process leaving at once waits for its last commit (a store that hangs longer
leaves the run as it was)."""

Restored = dict[int, tuple[StepState, str | None, str | None]]
"""Steps final in an earlier process: (state, chosen branch handle, reason), by step."""


class RunRecords:
    """The journal side of one run; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        plan: Plan,
        state: RunState,
        record: RunRecord,
        clock: Clock,
        encoder: Encoder | None,
        secrets: Secrets | None = None,
    ) -> None:
        self.journal = journal
        self._secrets = secrets or Secrets()
        self._plan, self._state, self._record = plan, state, record
        self._run_id = record.run_id
        self._clock, self._encoder = clock, encoder
        self._recorded: dict[int, tuple[int, float]] = {}  # step -> (attempt, started_at)
        self._cache_keys: dict[int, str] = {}  # step -> its attempt's key, to store under
        self._logs: dict[int, StepLog] = {}  # step -> its running attempt's log
        self._processes: dict[int, list[str]] = {}  # step -> its attempt's processes
        self._running: set[int] = set()  # steps whose attempt is journaled as running
        self._later: Later | None = None  # how a log arranges a flush: on the run's loop

    @property
    def busy(self) -> bool:
        """True while something handed to the journal has not come back."""
        return self.journal.busy

    def open(
        self,
        started: float,
        resuming: bool,
        params: Mapping[str, Any],
        on_error: Callable[[BaseException], None],
        after: Then,
    ) -> Mapping[str, Answer]:
        """Record the run that started at ``started`` (committed before any step starts),
        start the writer, and return the answers its approval steps have been given."""
        store, owner = self.journal.store, this_process()
        if resuming:  # recorded already: this process takes it over
            update = RunUpdate(self._run_id, status=RunStatus.RUNNING.value, owner=owner)
            store.write(runs=[update])
        else:
            record = self._record
            record.created_at = record.created_at or started
            record.status = RunStatus.RUNNING.value
            record.settings_json = settings_json(self._plan.settings, self._secrets.recorded())
            record.params_json = encode_json(params, repr) or "{}"  # masked by the store
            record.owner = owner
            store.create_run(record)
        answers = store.get_answers(self._run_id)
        if resuming:  # a retried run's approvals that run again ask again
            answers = Retried.of(self._record).standing(answers)
        install()
        loop = asyncio.get_running_loop()
        self._later = _later(loop)
        self.journal.start(loop, on_error, after)
        return answers

    def started(self, i: int) -> None:
        """Step ``i``'s next attempt is about to start: journaled first (write-ahead)."""
        self._recorded[i] = (self._state.attempts[i] + 1, self._clock.time())
        self._processes.pop(i, None)
        self._running.add(i)
        self.journal.add(step=self._step_record(i, StepState.RUNNING))

    def began(self, i: int, at: float) -> None:
        """Step ``i``'s attempt really began ``at`` (a Dask worker's word, after submission):
        journaled again, running, with that start."""
        if i in self._running and i in self._recorded:
            self._recorded[i] = (self._recorded[i][0], at)
            self.journal.add(step=self._step_record(i, StepState.RUNNING))

    def capture(self, i: int, fn: Callable[..., Any], executor: str) -> Callable[..., Any]:
        """``fn``, writing what it prints and logs into a new log of step ``i``'s attempt;
        on the processes and dask executors an ``InWorker`` (``Workers`` brings its log back)."""
        attempt = self._recorded[i][0] if i in self._recorded else self._state.attempts[i]
        run_id, sid, add = self._run_id, self._plan.graph.ids[i], self.journal.add

        def sink(seq: int, stream: str, text: str) -> None:
            add(log=LogRecord(run_id, sid, attempt, seq, stream, text))

        log = self._logs[i] = StepLog(sink, later=self._later, mask=self._secrets.masker)
        note = self._note(i, attempt)
        if executor in (ExecutorName.PROCESSES, ExecutorName.DASK):
            call = InWorker(fn, log)
            setattr(call, NOTE_ATTR, note)  # stays here: an InWorker pickles as (fn, limit)
            return call
        if executor == ExecutorName.ASYNC:  # where shell steps start their processes
            return watching(captured(fn, log, True), note, True)
        return captured(fn, log, False)

    def _note(self, i: int, attempt: int) -> Note:
        """What step ``i``'s attempt is told of each process it starts: the attempt is
        journaled again, running, with the process's identity (for ``resume``)."""
        loop = asyncio.get_running_loop()

        def noted(ident: str) -> None:
            if i not in self._running or self._recorded.get(i, (0,))[0] != attempt:
                return  # the attempt is over: its final record is on its way
            kept = self._processes.setdefault(i, [])
            kept.append(ident)
            del kept[:-_KEPT_PROCESSES]
            self.journal.add(step=self._step_record(i, StepState.RUNNING))

        def note(ident: str) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the run is over
                loop.call_soon_threadsafe(noted, ident)

        return note

    def _close_log(self, i: int) -> None:
        """The attempt of step ``i`` is over: the rest of its log goes into the journal."""
        log = self._logs.pop(i, None) if self._logs else None
        if log is not None:
            log.close()

    def waiting(
        self,
        i: int,
        state: StepState,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Step ``i`` paused (``reason``: the question) or waits to retry (``error``)."""
        self._close_log(i)
        self._running.discard(i)
        self.journal.add(step=self._step_record(i, state, reason=reason, error=error))

    def finished(self, i: int, state: StepState, reason: str | None, then: Then) -> None:
        """Step ``i`` is final: its record, and a fresh output for the cache, are committed
        before ``then`` (which releases its dependents) runs."""
        self._close_log(i)
        self._running.discard(i)
        record = self._step_record(i, state, reason=reason, error=self._state.errors.get(i))
        keys = self._cache_keys
        key = keys.pop(i, None) if keys else None
        entry = None
        if key is not None and state is StepState.SUCCEEDED and record.output_json is not None:
            policy = self._plan.cache[i] if self._plan.cache is not None else None
            ttl = policy.ttl if policy is not None else None
            now = self._clock.time()
            entry = cache_entry(key, record.output_json, now, ttl, self._run_id, record.step_id)
        self.journal.add(step=record, cache=entry, then=then)

    def look_up(
        self,
        i: int,
        policy: CachePolicy,
        inputs: dict[str, Any],
        ask: bool,
        answer: Callable[[CacheAnswer], None],
    ) -> bool:
        """Note step ``i``'s cache key for these inputs (its fresh output is stored under it)
        and, when ``ask``, ask the cache for it: True when ``answer`` will get the answer (on
        the loop). False when the step just runs: no lookups (``cache=False``), or inputs JSON
        cannot hold (``policy.key`` warned). Raises ``ExpressionError`` for a ``key`` template
        that cannot render (a mistake in the workflow)."""
        key = policy.key(inputs)
        if key is None:
            return False
        self._cache_keys[i] = key
        if not ask:
            return False

        def then(hit: bool, output: Any, error: BaseException | None) -> None:
            if hit:
                del self._cache_keys[i]  # nothing fresh to store
            answer(CacheAnswer(i, inputs, hit, output, error))

        self.journal.lookup(key, policy.ttl, then)
        return True

    def restore(self, records: Sequence[StepRecord]) -> Restored:
        """Steps whose final state an earlier process of this run committed keep it, and
        their outputs (a critical step's failure fails the run again); a success whose output
        was not stored runs again, as does one whose output was kept on a Dask cluster while a
        dependent still needs it."""
        st, index, actions = self._state, self._plan.graph.index, self._plan.actions
        final: Restored = {}
        for rec in records:
            i = index.get(rec.step_id)
            if i is None:
                continue
            state = StepState(rec.state)
            st.attempts[i] = rec.attempt  # a step run again gets the next attempt number
            if not state.is_final() or state is StepState.CANCELLED:
                continue
            handle = None
            if state is StepState.SUCCEEDED:
                if not rec.output_stored:
                    continue
                output = json.loads(rec.output_json) if rec.output_json is not None else None
                st.outputs[i] = KeptOnCluster.from_json(output) or output
                if rec.cached:
                    st.cached.add(i)
                handle_of = actions[i].handle
                handle = handle_of(output) if handle_of is not None else None
            elif rec.error is not None:
                st.errors[i] = failure = StepFailed(
                    rec.step_id, None, rec.error, rec.traceback or ""
                )
                if state is StepState.FAILED and _fails_the_run(self._plan, i):
                    st.first_failure = st.first_failure or failure
            st.started[i] = rec.started_at or 0.0
            st.finished[i] = rec.finished_at or 0.0
            final[i] = (state, handle, rec.reason)
        succs = self._plan.graph.succs
        for i in [i for i in final if isinstance(st.outputs[i], KeptOnCluster)]:
            if any(s not in final for s in succs[i]):
                del final[i]  # its value went with the cluster: it runs again
        st.kept |= set(final)  # a mapped step's instances are restored when it expands
        return final

    async def close(self, sched: Scheduler, status: RunStatus, error: str | None) -> None:
        """Record the steps never started (skipped, cancelled) and the run's end; stop."""
        self._end(sched, status, error)
        await self.journal.aclose()

    def leave(self, sched: Scheduler, stop: Stop) -> None:
        """The process leaves without waiting for its steps: record the steps not final yet as
        cancelled, then the end as ``close`` does, and wait here for the commit (briefly: the
        user asked to leave now)."""
        reason = f"{stop.reason} (the process left without waiting for it)"
        settled = self._state.finished  # their final records are on their way already
        for i, state in enumerate(sched.state):
            if not state.is_final() and not settled[i]:
                self.journal.add(step=self._step_record(i, StepState.CANCELLED, reason=reason))
        self._end(sched, stop.status, str(stop.error))
        self.journal.close_now(_LEAVING_WAIT)

    def _end(self, sched: Scheduler, status: RunStatus, error: str | None) -> None:
        state, kept = sched.state, self._state.kept
        for i in range(len(state)):
            if i not in self._recorded and i not in kept and state[i].is_final():
                record = self._step_record(i, state[i], reason=sched.reason.get(i))
                self.journal.add(step=record)
        end = RunUpdate(self._run_id, status=status.value, finished_at=self._clock.time())
        end.error = error
        self.journal.add(run=end)

    def _step_record(
        self,
        i: int,
        state: StepState,
        *,
        reason: str | None = None,
        error: BaseException | None = None,
    ) -> StepRecord:
        plan, st = self._plan, self._state
        sid = plan.graph.ids[i]
        attempt, started = self._recorded.get(i, (st.attempts[i], 0.0))
        record = StepRecord(self._run_id, sid, attempt, state.value, plan.executor_of[i])
        record.position = i
        record.started_at = started or None
        processes = self._processes.get(i) if self._processes else None
        record.processes = " ".join(processes) if processes else None
        record.reason = reason
        if state is not StepState.RUNNING:
            record.finished_at = self._clock.time()
        if state is StepState.SUCCEEDED:
            value = st.outputs[i]
            record.cached = i in st.cached
            if isinstance(value, KeptOnCluster):  # what it was, not its value
                value = value.to_json()
            record.output_json = encode_json(value, self._encoder)
            if record.output_json is None:
                record.output_stored = False
                warn_not_stored(sid, value)
        if error is not None:
            cause = error.cause if isinstance(error, StepFailed) else error
            record.error = str(error)
            record.traceback = format_traceback(cause) if cause is not None else None
        return record


def _fails_the_run(plan: Plan, i: int) -> bool:
    """Whether step ``i``'s recorded failure fails the run it is restored in: a critical step
    (an instance's failure counts through its mapped step, which settles again)."""
    return plan.graph.steps[i].critical and "[" not in plan.graph.ids[i]


def _later(loop: asyncio.AbstractEventLoop) -> Later:
    """``Later`` on the run's loop (a step's thread may ask); a closed loop drops the call,
    and the attempt's end hands on what waits anyway."""

    def later(flush: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.call_later, FLUSH_EVERY, flush)

    return later
