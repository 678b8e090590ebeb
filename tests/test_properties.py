"""Property tests: random DAGs run by pardag, checked against a small reference model.

The reference model (``model`` below) is a plain simulation written from the semantics, not
from pardag's scheduler: it walks the steps in declaration order (every edge points from an
earlier step to a later one) and decides each step's final state, attempts, skip or failure
reason and output from its dependencies' final states. Outputs are exact integers computed from
the inputs a step receives, so a wrong, missing or reordered input shows up as a wrong output.

Every run also records what happened from two sides, and the checks compare both with the
rules: pardag's own event stream (a ``Recorder``), and a ``Probe`` that the step functions
themselves write to (start and end of each attempt, with a global sequence number and a
monotonic time, and lock-protected running counters for the global limit and each pool).

Properties (numbers as in the test names' docstrings):
 1. a step starts only after all its dependencies are final (events and function bodies);
 2. one final event per step, at most one success, STEP_STARTED count == attempts;
 3. the running count never exceeds max_concurrency, nor a pool's size;
 4. the limit is reached whenever enough steps are ready (barrier tests);
 5. final states, reasons, attempts and outputs equal the model (on_failure="continue");
 6. the three modes give the same states and outputs;
 7. in levels mode, no step of level L+1 starts before level L is final;
 8. dispatch order is deterministic, and equal to the model's order at a limit of 1.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pardag
from pardag import EventKind, Mode, RetryPolicy, RunStatus, StepState, Trigger

ALWAYS = 1_000  # ``fail_first`` of a step that fails on every attempt
AUTO_THREADS = 64  # the threads executor's capacity when max_concurrency is 0 (auto)
WAIT = 5.0  # seconds a barrier waits before declaring the steps were not concurrent
MOD = (1 << 61) - 1

FINAL_EVENTS = frozenset(
    {
        EventKind.STEP_SUCCEEDED,
        EventKind.STEP_FAILED,
        EventKind.STEP_SKIPPED,
        EventKind.STEP_CANCELLED,
    }
)
ENDS_ATTEMPT = FINAL_EVENTS | {EventKind.STEP_RETRYING}
FINAL_EVENT_OF = {
    StepState.SUCCEEDED: EventKind.STEP_SUCCEEDED,
    StepState.FAILED: EventKind.STEP_FAILED,
    StepState.SKIPPED: EventKind.STEP_SKIPPED,
    StepState.CANCELLED: EventKind.STEP_CANCELLED,
}

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


# -- the graphs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    """One generated step; ``deps`` are indices of earlier steps, in ``depends_on`` order."""

    deps: tuple[int, ...] = ()
    fail_first: int = 0  # the first ``fail_first`` attempts raise (ALWAYS: every one)
    retries: int | None = None  # RetryPolicy(retries, delay=0), None: no retry policy
    trigger: Trigger = Trigger.ALL_SUCCESS
    when: bool | None = None  # a ``when`` callable returning this, None: no ``when``
    critical: bool = True
    pool: str | None = None
    amount: int = 1
    sleep: float = 0.0
    is_async: bool = False
    priority: int = 0


@dataclass(frozen=True)
class Dag:
    steps: tuple[StepSpec, ...]
    pools: tuple[tuple[str, int], ...] = ()

    def __len__(self) -> int:
        return len(self.steps)


def name(i: int) -> str:
    """Step ids are not zero-padded, so id order ("s10" < "s2") differs from index order."""
    return f"s{i}"


def levels_of(dag: Dag) -> list[int]:
    level = [0] * len(dag)
    for i, s in enumerate(dag.steps):
        level[i] = 1 + max((level[d] for d in s.deps), default=-1)
    return level


FAIL_FIRST = (0, 0, 0, 0, 1, 2, ALWAYS)
RETRIES = (None, None, 0, 1, 2)
TRIGGERS = (Trigger.ALL_SUCCESS, Trigger.ALL_SUCCESS, *Trigger.__members__.values())
WHEN = (None, None, None, True, False)
SLEEPS = (0.0, 0.0, 0.001, 0.002, 0.003)
PRIORITIES = (0, 0, 0, 1, -1, 2)


class Digits:
    """Reads choices out of one drawn integer; 0 gives the first option of every choice.

    One integer per step (instead of one draw per field) keeps a 200-step graph within
    Hypothesis's buffer, and it still shrinks towards plain steps.
    """

    def __init__(self, value: int) -> None:
        self.value = value

    def pick(self, options: Sequence[Any], enabled: bool = True) -> Any:
        self.value, k = divmod(self.value, len(options))
        return options[k] if enabled else options[0]


@st.composite
def dags(
    draw: st.DrawFn,
    *,
    max_steps: int = 200,
    failures: bool = True,
    retries: bool = True,
    pools: bool = True,
    priorities: bool = True,
    sleeps: bool = True,
) -> Dag:
    cap = draw(st.sampled_from([6, 6, 15, 40, max_steps]))
    n = draw(st.integers(1, min(cap, max_steps)))
    pool_list: list[tuple[str, int]] = []
    if pools:
        pool_list = [(f"p{k}", draw(st.integers(1, 3))) for k in range(draw(st.integers(0, 2)))]
    sizes = dict(pool_list)
    steps = []
    for i in range(n):
        deps: tuple[int, ...] = ()
        if i:  # mostly recent steps (deep graphs), sometimes any earlier one (wide joins)
            back = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 3)))
            deps = tuple(dict.fromkeys(i - 1 - b if b < 4 else b - 4 for b in back))
        pick = Digits(draw(st.integers(0, 2**40))).pick
        pool = pick([None, None, *sizes], bool(sizes))
        steps.append(
            StepSpec(
                deps=deps,
                fail_first=pick(FAIL_FIRST, failures),
                retries=pick(RETRIES, retries),
                trigger=pick(TRIGGERS),
                when=pick(WHEN),
                critical=pick((True, False)),
                pool=pool,
                amount=pick(range(1, sizes[pool] + 1)) if pool else 1,
                sleep=pick(SLEEPS, sleeps),
                is_async=pick((False, False, False, True)),
                priority=pick(PRIORITIES, priorities),
            )
        )
    return Dag(tuple(steps), tuple(pool_list))


limits = st.sampled_from([0, 1, 2, 3, 4, 8])
modes = st.sampled_from(list(Mode))


# -- the reference model -----------------------------------------------------------------------


def output_of(i: int, inputs: dict[str, Any]) -> int:
    """A step's output: a fold over its inputs in the order received, names and values."""
    acc = (i + 1) * 7919
    for dep, value in inputs.items():
        acc = (acc * 1_000_003 + int(dep[1:]) * 65_537 + value) % MOD
    return acc


@dataclass
class Expected:
    state: list[StepState]
    attempts: list[int]
    reason: list[str | None]
    outputs: dict[str, int]


def trigger_blocks(trigger: Trigger, deps: Sequence[int], state: Sequence[StepState]) -> str | None:
    """None if a step with these final dependencies runs, else why it is skipped."""
    if not deps or trigger is Trigger.ALL_DONE:
        return None
    failed = [d for d in deps if state[d] is StepState.FAILED]
    unlucky = [d for d in deps if state[d] is not StepState.SUCCEEDED]
    bad = f"upstream failed: {name(failed[0])}" if failed else None
    skip = f"upstream skipped: {name(unlucky[0])}" if unlucky else None
    if trigger is Trigger.ANY_SUCCESS:
        return None if len(unlucky) < len(deps) else (bad or skip)
    if trigger is Trigger.NONE_FAILED:
        return bad
    return bad or skip


def model(dag: Dag) -> Expected:
    """The expected end of a run with on_failure="continue" (declaration order is topological)."""
    n = len(dag)
    exp = Expected([StepState.PENDING] * n, [0] * n, [None] * n, {})
    for i, s in enumerate(dag.steps):
        why = trigger_blocks(s.trigger, s.deps, exp.state)
        if why is None and s.when is False:
            why = "condition false"
        if why is not None:
            exp.state[i], exp.reason[i] = StepState.SKIPPED, why
            continue
        allowed = s.retries or 0
        if s.fail_first <= allowed:
            exp.state[i], exp.attempts[i] = StepState.SUCCEEDED, s.fail_first + 1
            inputs = {name(d): exp.outputs[name(d)] for d in s.deps if name(d) in exp.outputs}
            exp.outputs[name(i)] = output_of(i, inputs)
        else:
            exp.state[i], exp.attempts[i] = StepState.FAILED, allowed + 1
            exp.reason[i] = f"Boom: {name(i)} attempt {allowed + 1}"
    return exp


def model_order(dag: Dag, mode: Mode) -> list[str]:
    """The ids in the order steps start at a limit of 1 (no retries in ``dag``).

    Dispatch picks the best ready step by (-priority, -upward rank, index) in dynamic and
    sequential modes, by (level, id as a string) in levels mode; the step runs to its end
    before the next is picked. A step whose ``when`` is false is picked but never started.
    """
    n = len(dag)
    exp = model(dag)
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, s in enumerate(dag.steps):
        for d in s.deps:
            succs[d].append(i)
    rank = [1] * n
    for i in reversed(range(n)):
        rank[i] = 1 + max((rank[s] for s in succs[i]), default=0)
    level = levels_of(dag)

    def key(i: int) -> tuple[Any, ...]:
        if mode is Mode.LEVELS:
            return (level[i], name(i))
        return (-dag.steps[i].priority, -rank[i], i)

    waiting = [len(s.deps) for s in dag.steps]
    heap: list[tuple[tuple[Any, ...], int]] = []

    def release(i: int) -> None:
        stack = [i]
        while stack:
            for s in succs[stack.pop()]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    if trigger_blocks(dag.steps[s].trigger, dag.steps[s].deps, exp.state):
                        stack.append(s)  # skipped at once: its dependents may resolve too
                    else:
                        heapq.heappush(heap, (key(s), s))

    for i in range(n):
        if not waiting[i]:
            heapq.heappush(heap, (key(i), i))
    order = []
    while heap:
        _, i = heapq.heappop(heap)
        if exp.attempts[i]:
            order.append(name(i))
        release(i)
    return order


# -- running a graph and watching it --------------------------------------------------------------


class Boom(Exception):
    """What a failing step raises."""


class Probe:
    """What the step functions see: attempts, start/end records and running counters."""

    def __init__(self, dag: Dag) -> None:
        self.lock = threading.Lock()
        self.records: list[tuple[int, float, str, int]] = []  # (seq, monotonic, what, step)
        self.calls = [0] * len(dag)
        self.running = self.max_running = 0
        self.threads = self.max_threads = 0
        self.in_pool: Counter[str] = Counter()
        self.max_in_pool: Counter[str] = Counter()

    def enter(self, i: int, spec: StepSpec) -> int:
        with self.lock:
            self.records.append((len(self.records), time.monotonic(), "start", i))
            self.calls[i] += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            if not spec.is_async:
                self.threads += 1
                self.max_threads = max(self.max_threads, self.threads)
            if spec.pool:
                self.in_pool[spec.pool] += spec.amount
                self.max_in_pool[spec.pool] = max(
                    self.max_in_pool[spec.pool], self.in_pool[spec.pool]
                )
            return self.calls[i]

    def leave(self, i: int, spec: StepSpec) -> None:
        with self.lock:
            self.running -= 1
            if not spec.is_async:
                self.threads -= 1
            if spec.pool:
                self.in_pool[spec.pool] -= spec.amount
            self.records.append((len(self.records), time.monotonic(), "end", i))


def step_fn(i: int, spec: StepSpec, probe: Probe) -> Callable[..., Any]:
    """The step's function: plain (threads executor) or ``async def``, bound by ``inputs``."""

    def outcome(attempt: int, inputs: dict[str, Any]) -> int:
        if attempt <= spec.fail_first:
            raise Boom(f"{name(i)} attempt {attempt}")
        return output_of(i, inputs)

    if spec.is_async:

        async def run_async(inputs: dict[str, Any]) -> int:
            attempt = probe.enter(i, spec)
            try:
                await asyncio.sleep(spec.sleep)
                return outcome(attempt, inputs)
            finally:
                probe.leave(i, spec)

        return run_async

    def run_thread(inputs: dict[str, Any]) -> int:
        attempt = probe.enter(i, spec)
        try:
            if spec.sleep:
                time.sleep(spec.sleep)
            return outcome(attempt, inputs)
        finally:
            probe.leave(i, spec)

    return run_thread


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def build(dag: Dag, probe: Probe) -> pardag.Workflow:
    wf = pardag.Workflow("props", pools=dict(dag.pools))
    for i, s in enumerate(dag.steps):
        wf.add(
            name(i),
            step_fn(i, s, probe),
            depends_on=[name(d) for d in s.deps],
            retry=None if s.retries is None else RetryPolicy(retries=s.retries, delay=0),
            trigger=s.trigger,
            when=None if s.when is None else (_yes if s.when else _no),
            critical=s.critical,
            resources={s.pool: s.amount} if s.pool else {},
            priority=s.priority,
        )
    return wf


@dataclass
class Outcome:
    dag: Dag
    mode: Mode
    limit: int
    result: pardag.RunResult
    events: list[pardag.Event]
    probe: Probe

    def started(self) -> list[str]:
        return [e.step for e in self.events if e.kind is EventKind.STEP_STARTED and e.step]

    def summary(self) -> dict[str, tuple[Any, ...]]:
        """What must not depend on the mode: state, attempts, reason, output."""
        return {
            sid: (r.state, r.attempts, r.reason, self.result.outputs.get(sid))
            for sid, r in self.result.steps.items()
        }


def execute(dag: Dag, mode: Mode, limit: int, on_failure: str = "continue") -> Outcome:
    probe = Probe(dag)
    rec = pardag.Recorder()
    result = build(dag, probe).run(
        mode=mode, max_concurrency=limit, on_failure=on_failure, listeners=[rec]
    )
    return Outcome(dag, mode, limit, result, rec.events, probe)


# -- the checks ---------------------------------------------------------------------------------


def check_model(out: Outcome) -> None:
    """Property 5: states, attempts, reasons, outputs and run status equal the model."""
    exp = model(out.dag)
    res = out.result
    got = {sid: (r.state, r.attempts, r.reason) for sid, r in res.steps.items()}
    want = {name(i): (exp.state[i], exp.attempts[i], exp.reason[i]) for i in range(len(out.dag))}
    wrong = [(sid, got.get(sid), want[sid]) for sid in want if got.get(sid) != want[sid]]
    assert not wrong, f"{len(wrong)} steps differ; the first (id, got, expected): {wrong[:3]}"
    assert set(got) == set(want)
    assert res.outputs == exp.outputs
    critical_failed = {
        name(i)
        for i, s in enumerate(out.dag.steps)
        if s.critical and exp.state[i] is StepState.FAILED
    }
    if critical_failed:
        assert res.status is RunStatus.FAILED
        assert isinstance(res.error, pardag.StepFailed)
        assert res.error.step in critical_failed
    else:
        assert res.status is RunStatus.SUCCEEDED, res.error


def check_events(out: Outcome) -> None:
    """Properties 1 and 2 from the event stream, plus the running count the events imply."""
    dag, events, res = out.dag, out.events, out.result
    assert events[0].kind is EventKind.RUN_STARTED and events[-1].kind is EventKind.RUN_FINISHED
    final_at: dict[str, int] = {}
    kinds: dict[str, Counter[EventKind]] = {name(i): Counter() for i in range(len(dag))}
    attempts_seen: dict[str, list[int]] = {name(i): [] for i in range(len(dag))}
    running: dict[str, StepSpec] = {}
    for k, e in enumerate(events):
        if e.step is None:
            continue
        i = int(e.step[1:])
        kinds[e.step][e.kind] += 1
        assert e.step not in final_at, f"{e.kind} of {e.step} after its final event"
        if e.kind is EventKind.STEP_STARTED:
            attempts_seen[e.step].append(e.attempt)
            for d in dag.steps[i].deps:
                assert name(d) in final_at, f"{e.step} started before its dependency {name(d)}"
            assert e.step not in running
            running[e.step] = dag.steps[i]
            check_running(out, running.values(), "events")
        if e.kind in ENDS_ATTEMPT:
            running.pop(e.step, None)
        if e.kind in FINAL_EVENTS:
            final_at[e.step] = k
    for sid, r in res.steps.items():
        assert sid in final_at, f"{sid} has no final event"
        assert events[final_at[sid]].kind is FINAL_EVENT_OF[r.state], sid
        assert kinds[sid][EventKind.STEP_SUCCEEDED] <= 1
        assert kinds[sid][EventKind.STEP_STARTED] == r.attempts, sid
        assert attempts_seen[sid] == list(range(1, r.attempts + 1)), sid
        retried = kinds[sid][EventKind.STEP_RETRYING]
        assert retried == max(0, r.attempts - 1) or r.state is StepState.CANCELLED, sid
    assert not running


def check_running(out: Outcome, running: Any, where: str) -> None:
    """Property 3 for one moment: the running steps fit in the limit and in every pool."""
    specs = list(running)
    limit = 1 if out.mode is Mode.SEQUENTIAL else out.limit
    if limit:
        assert len(specs) <= limit, f"{where}: {len(specs)} running, limit {limit}"
    else:
        threads = sum(1 for s in specs if not s.is_async)
        assert threads <= AUTO_THREADS, f"{where}: {threads} threads running"
    used: Counter[str] = Counter()
    for s in specs:
        if s.pool:
            used[s.pool] += s.amount
    for pool, size in out.dag.pools:
        assert used[pool] <= size, f"{where}: pool {pool} holds {used[pool]} of {size}"


def check_bodies(out: Outcome) -> None:
    """Properties 1-3 from inside the step functions."""
    dag, probe, res = out.dag, out.probe, out.result
    starts: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(dag))}
    ends: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(dag))}
    for seq, t, what, i in probe.records:
        (starts if what == "start" else ends)[i].append((seq, t))
    for i, s in enumerate(dag.steps):
        step = res.steps[name(i)]
        if step.state is StepState.CANCELLED:
            # a coroutine cancelled before its first line ran was started, but never entered
            assert step.attempts - 1 <= probe.calls[i] <= step.attempts, name(i)
        else:
            assert probe.calls[i] == step.attempts, name(i)
        assert len(starts[i]) == probe.calls[i]
        assert len(ends[i]) == probe.calls[i] or step.state is StepState.CANCELLED
        for seq, t in starts[i]:
            for d in s.deps:
                for dseq, dt in ends[d]:
                    assert dseq < seq and dt <= t, f"{name(i)} ran before {name(d)} ended"
    started = [e for e in out.events if e.kind is EventKind.STEP_STARTED]
    for e in started:
        i = int(e.step[1:]) if e.step else -1
        if e.attempt <= len(starts[i]):
            assert starts[i][e.attempt - 1][1] >= e.time, f"{e.step} ran before STEP_STARTED"
    limit = 1 if out.mode is Mode.SEQUENTIAL else out.limit
    if limit:
        assert probe.max_running <= limit
    assert probe.max_threads <= AUTO_THREADS
    for pool, size in dag.pools:
        assert probe.max_in_pool[pool] <= size, f"pool {pool}: {probe.max_in_pool[pool]} > {size}"


def check_levels(out: Outcome) -> None:
    """Property 7: in levels mode a step starts only once every lower level is final."""
    level = levels_of(out.dag)
    left = Counter(level)
    done = 0  # every level below ``done`` is final
    for e in out.events:
        if e.step is None:
            continue
        i = int(e.step[1:])
        if e.kind in FINAL_EVENTS:
            left[level[i]] -= 1
            while left[done] == 0 and done in left:
                done += 1
        elif e.kind is EventKind.STEP_STARTED:
            assert level[i] <= done, f"{e.step} (level {level[i]}) started, level {done} open"
    # and from the function bodies: a start follows every end of a lower level
    last_end = Counter[int]()
    for seq, _, what, i in out.probe.records:
        if what == "end":
            last_end[level[i]] = seq
    first_start: dict[int, int] = {}
    for seq, _, what, i in out.probe.records:
        if what == "start":
            first_start.setdefault(level[i], seq)
    for lv, seq in first_start.items():
        assert all(last_end[below] < seq for below in range(lv) if below in last_end), lv


def describe(out: Outcome) -> None:
    """Label the example, for ``--hypothesis-show-statistics``."""
    n = len(out.dag)
    event(f"steps: {'1-9' if n < 10 else '10-49' if n < 50 else '50+'}")
    states = Counter(r.state.value for r in out.result.steps.values())
    for state in ("failed", "skipped"):
        event(f"has {state}: {bool(states[state])}")
    event(f"retried: {any(r.attempts > 1 for r in out.result.steps.values())}")
    event(f"run: {out.result.status.value}")


def check_all(out: Outcome) -> None:
    check_model(out)
    check_events(out)
    check_bodies(out)
    if out.mode is Mode.LEVELS:
        check_levels(out)


# -- the properties -----------------------------------------------------------------------------


@settings(SETTINGS, max_examples=60)
@given(dag=dags(), mode=modes, limit=limits)
def test_random_dag_matches_model(dag: Dag, mode: Mode, limit: int) -> None:
    """Properties 1, 2, 3, 5 (and 7 in levels mode) on random graphs, on_failure=continue."""
    out = execute(dag, mode, limit)
    describe(out)
    check_all(out)


@settings(SETTINGS, max_examples=12)
@given(dag=dags(max_steps=60), limit=limits)
def test_modes_agree(dag: Dag, limit: int) -> None:
    """Property 6: dynamic, levels and sequential give the same states and outputs."""
    outs = [execute(dag, mode, limit) for mode in Mode]
    for out in outs:
        check_all(out)
    first = outs[0].summary()
    for out in outs[1:]:
        assert out.summary() == first, out.mode


@settings(SETTINGS, max_examples=12)
@given(dag=dags(max_steps=60), mode=modes, limit=limits)
def test_fail_fast_agrees_with_model_until_it_stops(dag: Dag, mode: Mode, limit: int) -> None:
    """Under fail_fast, every step that is not cancelled ends as the model says.

    The run fails iff the model has a critical failure, and then its error names one.
    """
    out = execute(dag, mode, limit, on_failure="fail_fast")
    check_events(out)
    check_bodies(out)
    exp = model(dag)
    critical_failed = {
        name(i) for i, s in enumerate(dag.steps) if s.critical and exp.state[i] is StepState.FAILED
    }
    res = out.result
    for i in range(len(dag)):
        r = res.steps[name(i)]
        if r.state is StepState.CANCELLED:
            assert critical_failed, f"{name(i)} cancelled without a critical failure"
            continue
        assert (r.state, r.attempts, r.reason) == (exp.state[i], exp.attempts[i], exp.reason[i])
        assert res.outputs.get(name(i)) == exp.outputs.get(name(i))
    if critical_failed:
        assert res.status is RunStatus.FAILED
        assert isinstance(res.error, pardag.StepFailed)
        assert res.error.step in critical_failed
    else:
        assert res.status is RunStatus.SUCCEEDED


@settings(SETTINGS, max_examples=15)
@given(dag=dags(max_steps=80, retries=False, sleeps=False), mode=modes)
def test_dispatch_order_at_limit_one_is_the_models(dag: Dag, mode: Mode) -> None:
    """Property 8: at a limit of 1 the start order is the same in two runs, and the model's."""
    first = execute(dag, mode, 1)
    second = execute(dag, mode, 1)
    check_all(first)
    assert first.started() == second.started()
    assert first.started() == model_order(dag, mode)


@settings(SETTINGS, max_examples=10)
@given(
    priorities=st.lists(st.integers(-5, 5), min_size=2, max_size=8, unique=True),
    limit=st.sampled_from([0, 1, 4]),
)
def test_sequential_starts_the_highest_priority_root_first(
    priorities: list[int], limit: int
) -> None:
    """Property 8: among roots ready together, sequential mode starts the highest priority."""
    steps = [StepSpec(priority=p) for p in priorities]
    steps += [StepSpec(deps=(k,)) for k in range(len(priorities))]  # equal ranks for all roots
    out = execute(Dag(tuple(steps)), Mode.SEQUENTIAL, limit)
    check_all(out)
    roots = sorted(range(len(priorities)), key=lambda k: -priorities[k])
    started_roots = [sid for sid in out.started() if int(sid[1:]) < len(priorities)]
    assert started_roots == [name(k) for k in roots]


@settings(SETTINGS, max_examples=20)
@given(
    dag=dags(max_steps=30, pools=False, priorities=False, sleeps=False),
    fail_first=st.integers(0, 4),
    retries=st.integers(0, 3),
    mode=modes,
)
def test_retries_succeed_iff_failures_fit(
    dag: Dag, fail_first: int, retries: int, mode: Mode
) -> None:
    """A step failing its first k attempts, with r retries, succeeds iff k <= r, after
    min(k, r) + 1 attempts; its dependents then see its output."""
    head = StepSpec(fail_first=fail_first, retries=retries)
    shifted = [replace(s, deps=(0, *(d + 1 for d in s.deps))) for s in dag.steps]
    dag = Dag((head, *shifted), dag.pools)
    out = execute(dag, mode, 2)
    check_all(out)
    r = out.result.steps[name(0)]
    assert r.attempts == min(fail_first, retries) + 1
    assert (r.state is StepState.SUCCEEDED) == (fail_first <= retries)


def barrier_step(barrier: threading.Barrier, probe: Probe, spec: StepSpec) -> Callable[[], int]:
    def wait() -> int:
        probe.enter(0, spec)
        try:
            return barrier.wait(WAIT)
        finally:
            probe.leave(0, spec)

    return wait


@settings(SETTINGS, max_examples=12)
@given(
    limit=st.sampled_from([0, 1, 2, 3, 5, 8]),
    pool=st.one_of(st.none(), st.integers(1, 4)),
    groups=st.integers(1, 3),
    mode=st.sampled_from([Mode.DYNAMIC, Mode.LEVELS]),
)
def test_limit_is_reached_when_enough_steps_are_ready(
    limit: int, pool: int | None, groups: int, mode: Mode
) -> None:
    """Property 4: root -> K independent steps that wait on a barrier of ``parties``.

    The run can only finish without a broken barrier if ``parties`` steps run at once, where
    ``parties`` is the limit (or the pool's size when smaller; 10 under the auto limit).
    """
    cap = limit or 10
    parties = min(cap, pool or cap)
    k = parties * groups
    barrier = threading.Barrier(parties)
    spec = StepSpec(pool="db" if pool else None)
    probe = Probe(Dag((spec,)))
    wf = pardag.Workflow("wide", pools={"db": pool} if pool else {})
    wf.add("root", lambda: 0, depends_on=[])
    for j in range(k):
        wf.add(
            f"w{j}",
            barrier_step(barrier, probe, spec),
            depends_on=["root"],
            resources={"db": 1} if pool else {},
        )
    res = wf.run(mode=mode, max_concurrency=limit)
    failed = {sid: r.reason for sid, r in res.steps.items() if r.state is not StepState.SUCCEEDED}
    assert not failed, f"only {probe.max_running} ran at once, {parties} expected: {failed}"
    assert probe.max_running == parties or not limit


@settings(SETTINGS, max_examples=8)
@given(
    limit=st.integers(2, 6),
    queued=st.integers(2, 4),
    groups=st.integers(1, 2),
    mode=st.sampled_from([Mode.DYNAMIC, Mode.LEVELS]),
)
def test_full_pool_does_not_block_steps_behind_it(
    limit: int, queued: int, groups: int, mode: Mode
) -> None:
    """Property 4 with a pool: steps queued on a full pool (and first in priority) must not
    hold back the other ready steps, which run ``limit - 1`` at a time beside it.

    The pool's holder waits until every other step is done; the others meet at a barrier of
    ``limit - 1``. Head-of-line blocking would break the barrier or time out the holder.
    """
    parties = limit - 1
    others = parties * groups
    barrier = threading.Barrier(parties)
    all_done = threading.Event()
    finished = Counter[str]()
    lock = threading.Lock()

    def holder() -> None:
        if not all_done.wait(WAIT):
            raise TimeoutError("the other steps did not run beside the pool's holder")

    def other() -> None:
        barrier.wait(WAIT)
        with lock:
            finished["n"] += 1
            if finished["n"] == others:
                all_done.set()

    wf = pardag.Workflow("pool", pools={"one": 1})
    for j in range(queued):
        wf.add(f"a{j}", holder, depends_on=[], resources={"one": 1}, priority=10)
    for j in range(others):
        wf.add(f"b{j}", other, depends_on=[])
    res = wf.run(mode=mode, max_concurrency=limit)
    failed = {sid: r.reason for sid, r in res.steps.items() if r.state is not StepState.SUCCEEDED}
    assert not failed


@settings(SETTINGS, max_examples=10)
@given(
    trigger=st.sampled_from(list(Trigger)),
    upstream=st.lists(st.sampled_from(["ok", "fail", "skip"]), min_size=1, max_size=3),
)
def test_trigger_given_as_a_string_acts_like_the_enum(
    trigger: Trigger, upstream: list[str]
) -> None:
    """``trigger="all_done"`` (the documented spelling, and what file formats give) must act
    exactly like ``trigger=Trigger.ALL_DONE``."""
    results = []
    for spelling in (trigger, trigger.value):
        wf = pardag.Workflow("trig", on_failure="continue")
        deps = []
        for k, what in enumerate(upstream):
            wf.add(
                f"u{k}",
                (lambda: 1) if what != "fail" else _fail,
                depends_on=[],
                when=_no if what == "skip" else None,
                critical=False,
            )
            deps.append(f"u{k}")
        wf.add("t", lambda inputs: sorted(inputs), depends_on=deps, trigger=spelling)
        r = wf.run().steps["t"]
        results.append((r.state, r.reason))
    assert results[1] == results[0], f"trigger={trigger.value!r} as a string"


def _fail() -> None:
    raise Boom("no")


def test_model_sanity() -> None:
    """The reference model on a hand-drawn graph (so a wrong model cannot pass silently).

    s0 ok -> s1 fails (twice) -> s2 (all_success: skipped); s3 (all_done) <- s1, s0;
    s4 (when false) <- s0; s5 (none_failed) <- s2, s4 runs; s6 (any_success) <- s2, s1 skipped.
    """
    dag = Dag(
        (
            StepSpec(),
            StepSpec(deps=(0,), fail_first=ALWAYS, retries=1),
            StepSpec(deps=(1,)),
            StepSpec(deps=(1, 0), trigger=Trigger.ALL_DONE),
            StepSpec(deps=(0,), when=False),
            StepSpec(deps=(2, 4), trigger=Trigger.NONE_FAILED),
            StepSpec(deps=(2, 1), trigger=Trigger.ANY_SUCCESS),
        )
    )
    exp = model(dag)
    S = StepState
    assert exp.state == [
        S.SUCCEEDED,
        S.FAILED,
        S.SKIPPED,
        S.SUCCEEDED,
        S.SKIPPED,
        S.SUCCEEDED,
        S.SKIPPED,
    ]
    assert exp.reason[1:] == [
        "Boom: s1 attempt 2",
        "upstream failed: s1",
        None,
        "condition false",
        None,
        "upstream failed: s1",
    ]
    assert exp.outputs["s3"] == output_of(3, {"s0": output_of(0, {})})
    assert exp.outputs["s5"] == output_of(5, {})
    assert exp.attempts == [1, 2, 0, 1, 0, 1, 0]
    out = execute(dag, Mode.DYNAMIC, 2)
    check_all(out)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_200_step_graph(mode: Mode) -> None:
    """One large, fixed graph per mode, so the big end is always covered."""
    steps = []
    for i in range(200):
        deps = tuple(d for d in (i - 1, i - 7, i // 2) if 0 <= d < i)
        deps = tuple(dict.fromkeys(deps))
        steps.append(
            StepSpec(
                deps=deps,
                fail_first=ALWAYS if i % 37 == 5 else (1 if i % 11 == 3 else 0),
                retries=1 if i % 22 == 3 else None,
                trigger=list(Trigger)[i % 4] if i % 3 == 0 else Trigger.ALL_SUCCESS,
                when=False if i % 41 == 9 else None,
                critical=i % 2 == 0,
                pool="p0" if i % 5 == 0 else None,
                is_async=i % 4 == 1,
                priority=i % 3 - 1,
            )
        )
    out = execute(Dag(tuple(steps), (("p0", 2),)), mode, 4)
    check_all(out)


# -- regressions found by the properties above ----------------------------------------------------


@pytest.mark.parametrize("critical_first", [True, False])
def test_fail_fast_cancels_a_step_that_still_had_a_retry(critical_first: bool) -> None:
    """Under fail_fast, a step whose failed attempt still had a retry left ends CANCELLED.

    Both attempts end in the same turn of the loop; which one is settled first (here set by
    priority) must not change the outcome: if ``b`` is settled first it is retrying when ``a``
    stops the run, and is cancelled; settled second, it was still running when ``a`` stopped the
    run, and running steps are cancelled too. (Found by the fail_fast property above.)
    """

    async def a() -> None:
        raise Boom("a, critical")

    async def b() -> None:
        raise Boom("b, first attempt")

    wf = pardag.Workflow("ff")
    wf.add("a", a, depends_on=[], priority=1 if critical_first else -1)
    wf.add("b", b, depends_on=[], retry=RetryPolicy(retries=1, delay=0))
    res = wf.run()
    assert res.status is RunStatus.FAILED
    assert res.steps["a"].state is StepState.FAILED
    b_res = res.steps["b"]
    assert b_res.state is StepState.CANCELLED, (b_res.state, b_res.reason)


def test_an_abandoned_threads_error_is_not_logged_as_never_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thread step stopped by fail_fast that raises later must not make asyncio log
    "Future exception was never retrieved" (an ERROR with a traceback) for its future."""
    go = threading.Event()

    class OpenWhenAFails:
        def on_event(self, e: pardag.Event) -> None:
            if e.kind is EventKind.STEP_FAILED and e.step == "a":
                go.set()  # b raises now, after the run has stopped it

    def a() -> None:
        raise Boom("a")

    def b() -> None:
        go.wait(WAIT)
        raise Boom("b, after the abort")

    wf = pardag.Workflow("abandon")
    wf.add("a", a, depends_on=[], priority=1)
    wf.add("b", b, depends_on=[])
    res = wf.run(listeners=[OpenWhenAFails()])
    assert res.steps["b"].state is StepState.CANCELLED
    del res
    gc.collect()  # the message is logged when the future is collected
    unretrieved = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not unretrieved
