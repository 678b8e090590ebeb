"""Mapped steps at run time: one step instance per item of a list known only once it exists.

A mapped step (``@wf.map(over="list_files")``) is planned as one step. When its turn comes
(its dependencies final, a slot taken), ``Mapper.expand`` reads its source's output and
appends one instance per item to the run's flat per-step lists: the graph, the plan, the
run state and the scheduler (``Scheduler.expand``). Instance ``process[3]`` is then a step
like any other, with its own attempts, retries, timeout, slot and events; it calls the
mapped function with item 3 as its first argument and the other dependencies whole. The
mapped step gives back its slot and waits; once every instance is final, ``close`` settles
it: the list of the instances' outputs in item order, or a failure naming the first failed
instance. Expanding appends: nothing planned before is renumbered, so the hot loop pays
nothing for maps it does not run.

A map over several steps zips their lists (item k of each). A map over a mapped step expands
as soon as that one does (outside ``levels`` mode): its instance k waits only for the other's
instance k (``Scheduler.expand``'s gates) and reads its output when it starts, so items flow
through a chain of maps one by one. ``allow_failures`` lets a map succeed with some instances
failed: None at their places, and a reason naming them.
"""

from __future__ import annotations

import dataclasses
import functools
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from pardag.errors import StepFailed
from pardag.events import EventKind
from pardag.kinds import Action
from pardag.model import Graph, Step
from pardag.recording import Resumption
from pardag.runner.events import Announcer
from pardag.runner.plan import Check, Plan
from pardag.runner.records import RunRecords
from pardag.runner.state import RunState
from pardag.scheduler import Scheduler
from pardag.states import Mode, StepState, Trigger
from pardag.templates import ItemInputs
from pardag.validate import item_inputs, item_step

__all__ = ["MAX_ITEMS", "Mapper", "Settlers", "fork_graph", "has_maps"]

MAX_ITEMS = 100_000
"""The longest list a step maps over unless it says otherwise (``max_items``)."""

SUCCEEDED, FAILED, CANCELLED = StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED


def has_maps(graph: Graph) -> bool:
    """Whether some step of ``graph`` is mapped."""
    return any(s.map_over is not None for s in graph.steps)


def fork_graph(graph: Graph) -> Graph:
    """A copy of ``graph`` whose per-step lists a run may append instances to (the workflow
    keeps its compiled graph for its next runs)."""
    return dataclasses.replace(
        graph,
        steps=list(graph.steps),
        ids=list(graph.ids),
        index=dict(graph.index),
        preds=list(graph.preds),
        succs=list(graph.succs),
    )


class _Item(NamedTuple):
    """Where instance k of a map finds its item and what it passes on whole."""

    names: tuple[str, ...]  # the mapped function's parameters taking the items (a kind: none)
    shared: dict[str, Any]  # the other dependencies' outputs, by id
    items: Sequence[Any]  # the items (a zipped map: one tuple per instance)
    zipped: bool
    keyed: bool  # a code step's: inputs 'item' and 'item_index' too

    def inputs(self, k: int) -> ItemInputs:
        """Instance ``k``'s inputs: the item under its parameters' names, the rest whole."""
        item = self.items[k]
        if not self.names:
            value = list(item) if self.zipped else item
            if self.keyed:
                return ItemInputs({**self.shared, "item": value, "item_index": k}, value, k)
            return ItemInputs(self.shared, value, k)
        values = item if self.zipped else (item,)
        return ItemInputs({**self.shared, **dict(zip(self.names, values, strict=True))}, item, k)


class _Outputs(Sequence[Any]):
    """The items of a map over a mapped step: instance k of that one's output, read when
    the instance that takes it starts (it has ended by then)."""

    def __init__(self, outputs: list[Any], first: int, count: int) -> None:
        self._outputs, self._first, self._count = outputs, first, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, k: Any) -> Any:
        return self._outputs[self._first + k]


def _call_with_item(
    bind: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]],
    item: _Item,
    k: int,
    _given: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An instance's binder: the mapped function's own, over the instance's inputs (the item
    under its parameter's name, the other dependencies whole)."""
    return bind(item.inputs(k), params)


def _check_item(
    check: Check, item: _Item, k: int, _given: Mapping[str, Any], params: Mapping[str, Any]
) -> bool:
    """An instance's ``when``: the mapped step's, reading its item also as ``item`` and
    ``item_index``."""
    inputs = item.inputs(k)
    return check({**inputs, "item": inputs.item, "item_index": k}, params)


class Settlers(NamedTuple):
    """The runner's ways to settle a step, which a mapped step's outcome goes through."""

    succeeded: Callable[..., None]
    failed: Callable[[int, BaseException | None], None]
    finish: Callable[..., None]


class Mapper:
    """Expands the mapped steps of one run and settles them; only the ``Runner`` calls it."""

    def __init__(
        self,
        plan: Plan,
        state: RunState,
        sched: Scheduler,
        events: Announcer,
        timeouts: list[float | None],
        settle: Settlers,
        records: RunRecords | None = None,
        resumption: Resumption | None = None,
    ) -> None:
        """``timeouts`` is the run's alarms' list, ``settle`` the runner's own outcomes;
        with ``records`` (a durable run) instances are journaled like steps, and those an
        earlier process of the run (``resumption``) finished keep their end."""
        self.plan, self.state, self.sched, self._events = plan, state, sched, events
        self._timeouts, self._settle, self._records = timeouts, settle, records
        earlier = resumption.steps if resumption is not None and records is not None else ()
        self._earlier = {r.step_id: r for r in earlier if r.step_id.endswith("]")}
        graph = plan.graph
        self.sources = {
            i: tuple(graph.index[x] for x in s.map_sources())
            for i, s in enumerate(graph.steps)
            if s.map_over is not None
        }
        """Each mapped step -> the steps whose outputs it maps over."""
        self._followers = _followers(graph, self.sources, plan.settings.mode)
        self.instances: dict[int, range] = {}
        self._expanded: dict[int, tuple[int, _Item]] = {}  # map -> its first instance, items
        self._allowed: dict[int, int] = {}  # a map with allow_failures -> how many may fail
        self._failures: dict[int, int] = {}
        self._closed: dict[int, StepState] = {}

    def start(self, m: int, now: float) -> None:
        """Mapped step ``m``'s turn: its instances join the run, or it ends at once (an
        empty list succeeds with ``[]``; a wrong output fails it, with no retry)."""
        self.state.begin_attempt(m, now)
        outcome = self.expand(m, now)
        if outcome is None and self.sched.fans_done:  # every instance finished earlier
            self.settle()
        elif isinstance(outcome, list):
            self._settle.succeeded(m, outcome)
        elif outcome is not None:
            self.state.no_retry.add(m)
            self._settle.failed(m, outcome)

    def settle(self) -> None:
        """Settle each mapped step whose instances have all become final, in that order."""
        done, st = self.sched.fans_done, self.state
        while done:
            m = done.pop(0)
            state, value, reason = self.close(m)
            self._closed[m] = state
            if state is SUCCEEDED:
                self._settle.succeeded(m, value, reason=reason)
            elif state is FAILED:
                st.errors[m] = value
                if self.plan.graph.steps[m].critical:
                    st.first_failure = st.first_failure or value
                self._settle.finish(m, FAILED, reason=value.reason)
            else:
                self._settle.finish(m, state, reason=reason)

    def item_of(self, j: int) -> tuple[int, Any] | None:
        """Instance ``j``'s mapped step and item (zipped items as a list); None for a step
        that is no instance."""
        m = self.sched.parent_of(j)
        if m is None:
            return None
        first, item = self._expanded[m]
        value = item.items[j - first]
        return m, list(value) if item.zipped else value

    def escalates(self, j: int) -> bool:
        """Instance ``j`` has failed for good: whether its map's allowance is now spent, so
        that the failure counts as a critical step's (fail-fast stops the run)."""
        m = self.sched.parent_of(j)
        if m is None or m not in self._allowed:
            return False
        self._failures[m] = self._failures.get(m, 0) + 1
        return self._failures[m] == self._allowed[m] + 1

    def expand(self, m: int, now: float) -> Exception | list[Any] | None:
        """Mapped step ``m`` starts: its instances join the run. Returns the error it fails
        with (not a list, lists of different lengths, too long), ``[]`` for an empty list,
        or None once expanded."""
        step = self.plan.graph.steps[m]
        items = self._items(m, step)
        if isinstance(items, Exception):
            return items
        limit = step.max_items or MAX_ITEMS
        if len(items) > limit:
            return ValueError(
                f"step {step.id!r} maps over {len(items):,} items of {_names(step)}, over its "
                f"max_items of {limit:,}; raise max_items= on {step.id!r} or split the list"
            )
        if not items:
            return []
        self._append(m, step, items, now)
        return None

    def _items(self, m: int, step: Step) -> Sequence[Any] | Exception:
        """The items of mapped step ``m``: its source's list, or its sources' lists zipped."""
        ids, outputs = self.plan.graph.ids, self.state.outputs
        lists = [outputs[x] for x in self.sources[m]]
        for x, items in zip(self.sources[m], lists, strict=True):
            if not isinstance(items, list):
                return TypeError(
                    f"step {step.id!r} maps over {ids[x]!r}, whose output is a "
                    f"{type(items).__name__}, not a list; make {ids[x]!r} return a list"
                )
        if len(lists) == 1:
            return lists[0]  # type: ignore[no-any-return]  # a list, checked above
        if len({len(x) for x in lists}) > 1:
            sizes = ", ".join(
                f"{ids[x]!r} has {len(v):,}" for x, v in zip(self.sources[m], lists, strict=True)
            )
            return ValueError(
                f"step {step.id!r} zips lists of different lengths ({sizes}); make them "
                "equal, or map over one list and take the others whole"
            )
        return list(zip(*lists, strict=True))

    def _append(
        self, m: int, step: Step, items: Sequence[Any], now: float, gates: range | None = None
    ) -> None:
        """Add one instance per item to every per-step list of the run, then to the scheduler."""
        graph, plan, st = self.plan.graph, self.plan, self.state
        n, first = len(items), len(graph.ids)
        over = self.sources[m] if gates is not None else ()  # not ended yet: no list
        shared = {graph.ids[p]: st.outputs[p] for p in graph.preds[m] if p not in over}
        keyed = step.fn is None and item_inputs(step.kind)
        item = _Item(_item_names(step), shared, items, len(self.sources[m]) > 1, keyed)
        action: Action = plan.actions[m]  # planned for an instance (``item_step``)
        ids = [f"{step.id}[{k}]" for k in range(n)]
        graph.ids.extend(ids)
        graph.index.update(zip(ids, range(first, first + n), strict=True))
        allowance = _allowance(step, n)
        critical = step.critical and allowance is None
        graph.steps.extend(_instances_of(step, ids, critical))
        graph.preds.extend([()] * n)
        graph.succs.extend([()] * n)
        _extend(plan.actions, [_instance_action(action, item, k) for k in range(n)])
        _extend(plan.executor_of, [plan.executor_of[m]] * n)
        check = plan.checks[m]
        _extend(
            plan.checks,
            [None if check is None else _instance_check(check, item, k) for k in range(n)],
        )
        if plan.cache is not None:
            _extend(plan.cache, [None] * n)
        st.outputs.extend([None] * n)
        st.attempts.extend([0] * n)
        st.started.extend(array("d", (0.0,)) * n)
        st.finished.extend(array("d", (0.0,)) * n)
        self._timeouts.extend([step.timeout] * n)
        if allowance is not None:
            self._allowed[m] = allowance
        self.instances[m] = new = self.sched.expand(m, n, step.map_concurrency, gates)
        self._expanded[m] = (first, item)
        self._events.emit(EventKind.STEP_STARTED, m, instances=n)
        if self._earlier and self._records is not None:
            kept = [self._earlier[sid] for sid in ids if sid in self._earlier]
            self.sched.restore(self._records.restore(kept))
        if self._events.listening:
            for j in new:
                if self.sched.state[j] is StepState.READY:
                    self._events.state(j, StepState.READY, None)
        for b in self._followers.get(m, ()):
            self._pipeline(b, new, now)

    def _pipeline(self, b: int, gates: range, now: float) -> None:
        """Map ``b`` over the map that just expanded, before that one ends: instance k of
        ``b`` waits only for instance k of it. Only when ``b`` waits for nothing else."""
        graph, sched = self.plan.graph, self.sched
        source = self.sources[b][0]
        ready = all(sched.state[p] is SUCCEEDED for p in graph.preds[b] if p != source)
        step = graph.steps[b]
        if sched.state[b] is not StepState.PENDING or not ready:
            return
        if len(gates) > (step.max_items or MAX_ITEMS):
            return  # its turn comes once the source ends, and fails it then
        sched.start_early(b)
        if self._records is not None:
            self._records.started(b)
        self.state.begin_attempt(b, now)
        self._append(b, step, _Outputs(self.state.outputs, gates[0], len(gates)), now, gates)

    def close(self, m: int) -> tuple[StepState, Any, str | None]:
        """Every instance of ``m`` is final: ``m``'s state, its output (the list, in item
        order; None where an instance was skipped or failed within ``allow_failures``) or
        error, and its reason."""
        states, st, ids = self.sched.state, self.state, self.plan.graph.ids
        mine = self.instances.pop(m, range(0))
        upstream = next(
            (x for x in self.sources[m] if self._closed.get(x, SUCCEEDED) is not SUCCEEDED), None
        )
        if upstream is not None:  # a map over a map that failed after this one expanded
            return StepState.SKIPPED, None, f"upstream failed: {ids[upstream]}"
        failed = [j for j in mine if states[j] is FAILED]
        allowed = self._allowed.pop(m, 0)
        if len(failed) > allowed:
            cause = _reason(st, failed[0])
            reason = f"{len(failed)} of {len(mine)} instances failed; {ids[failed[0]]}: {cause}"
            return FAILED, StepFailed(ids[m], st.errors.get(failed[0]), reason), reason
        cancelled = next((j for j in mine if states[j] is CANCELLED), None)
        if cancelled is not None:
            return CANCELLED, None, self.sched.reason.get(cancelled, "cancelled")
        output = [st.outputs[j] if states[j] is SUCCEEDED else None for j in mine]
        return SUCCEEDED, output, _failures_summary(failed, len(mine), allowed, st, ids)


def _followers(
    graph: Graph, sources: dict[int, tuple[int, ...]], mode: Mode
) -> dict[int, list[int]]:
    """Each mapped step -> the maps over its list alone that may expand as soon as it does
    (not in ``levels`` mode, whose levels wait for each other; not with another trigger
    rule or a branch, which need the source's end)."""
    out: dict[int, list[int]] = {}
    if mode is Mode.LEVELS:
        return out
    for b, over in sources.items():
        step = graph.steps[b]
        if (
            len(over) == 1
            and over[0] in sources
            and step.trigger == Trigger.ALL_SUCCESS
            and not step.branch
        ):
            out.setdefault(over[0], []).append(b)
    return out


def _allowance(step: Step, n: int) -> int | None:
    """How many of ``n`` instances may fail with the map still succeeding: ``allow_failures``
    (a count, or a fraction of ``n`` rounded down), all of them for a step that is not
    critical; None: none may."""
    allow = step.allow_failures
    if allow is None:
        return None if step.critical else n
    return allow if isinstance(allow, int) else int(allow * n)


def _failures_summary(
    failed: list[int], n: int, allowed: int, st: RunState, ids: list[str]
) -> str | None:
    """A map that succeeded with failed instances says which, and why (the first five)."""
    if not failed:
        return None
    shown = "; ".join(f"{ids[j]}: {_reason(st, j)}" for j in failed[:5])
    more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {n} instances failed (allowed {allowed}): {shown}{more}"


def _reason(st: RunState, j: int) -> str:
    error = st.errors.get(j)
    return error.reason if error is not None else "failed"


def _names(step: Step) -> str:
    return " and ".join(repr(x) for x in step.map_sources())


def _item_names(step: Step) -> tuple[str, ...]:
    """The names under which an instance's inputs carry its items: the first parameters of
    the mapped function (``item_step`` made them its first dependencies); none for a kind's
    step, whose templates read the item as ``{{ item }}``."""
    if step.fn is None:
        return ()
    return item_step(step).depends_on[: len(step.map_sources())]


def _instances_of(step: Step, ids: list[str], critical: bool) -> Iterator[Step]:
    """One ``Step`` per instance id: the mapped step's fields, not mapped. Built field by
    field in order (``dataclasses.replace`` costs 8 times as much, per instance)."""
    fields = [getattr(step, name) for name in _STEP_FIELDS]
    fields[_AT_MAP_OVER], fields[_AT_CRITICAL] = None, critical
    rest = fields[1:]
    return (Step(sid, *rest) for sid in ids)


_STEP_FIELDS = [f.name for f in dataclasses.fields(Step)]
_AT_MAP_OVER, _AT_CRITICAL = _STEP_FIELDS.index("map_over"), _STEP_FIELDS.index("critical")


def _instance_action(action: Action, item: _Item, k: int) -> Action:
    """The mapped step's action, binding instance ``k``'s inputs (field by field, as above)."""
    fields = [getattr(action, name) for name in _ACTION_FIELDS]
    fields[_AT_BIND] = functools.partial(_call_with_item, action.bind, item, k)
    return Action(*fields)


_ACTION_FIELDS = [f.name for f in dataclasses.fields(Action)]
_AT_BIND = _ACTION_FIELDS.index("bind")


def _instance_check(check: Check, item: _Item, k: int) -> Check:
    return functools.partial(_check_item, check, item, k)


def _extend(per_step: Sequence[Any], values: list[Any]) -> None:
    """Append to a plan's per-step list (a list, though the frozen plan shows a Sequence)."""
    assert isinstance(per_step, list)
    per_step.extend(values)
