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
"""

from __future__ import annotations

import dataclasses
import functools
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from pardag.errors import StepFailed
from pardag.events import EventKind
from pardag.kinds import Action
from pardag.model import Graph, Step
from pardag.recording import Resumption
from pardag.runner.events import Announcer
from pardag.runner.plan import Plan
from pardag.runner.records import RunRecords
from pardag.runner.state import RunState
from pardag.scheduler import Scheduler
from pardag.states import StepState
from pardag.templates import ItemInputs
from pardag.validate import item_step

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


def _call_with_item(
    bind: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]],
    inputs: Mapping[str, Any],
    _given: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An instance's binder: the mapped function's own, over the instance's inputs (the item
    under its parameter's name, the other dependencies whole)."""
    return bind(inputs, params)


class Settlers(NamedTuple):
    """The runner's ways to settle a step, which a mapped step's outcome goes through."""

    succeeded: Callable[[int, Any], None]
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
            i: graph.index[s.map_over] for i, s in enumerate(graph.steps) if s.map_over is not None
        }
        """Each mapped step -> the step whose output it maps over."""
        self.instances: dict[int, range] = {}

    def start(self, m: int, now: float) -> None:
        """Mapped step ``m``'s turn: its instances join the run, or it ends at once (an
        empty list succeeds with ``[]``; a wrong output fails it, with no retry)."""
        self.state.begin_attempt(m, now)
        outcome = self.expand(m)
        if outcome is None and self.sched.fans_done:  # every instance finished earlier
            self.settle()
        elif isinstance(outcome, list):
            self._settle.succeeded(m, outcome)
        elif outcome is not None:
            self.state.no_retry.add(m)
            self._settle.failed(m, outcome)

    def settle(self) -> None:
        """Settle each mapped step whose instances have all become final."""
        done, st = self.sched.fans_done, self.state
        while done:
            m = done.pop()
            state, value = self.close(m)
            if state is SUCCEEDED:
                self._settle.succeeded(m, value)
            elif state is FAILED:
                st.errors[m] = value
                if self.plan.graph.steps[m].critical:
                    st.first_failure = st.first_failure or value
                self._settle.finish(m, FAILED, reason=value.reason)
            else:
                self._settle.finish(m, state, reason=value)

    def expand(self, m: int) -> Exception | list[Any] | None:
        """Mapped step ``m`` starts: its instances join the run. Returns the error it fails
        with (not a list, too long), ``[]`` for an empty list, or None once expanded."""
        graph, st = self.plan.graph, self.state
        step, source = graph.steps[m], graph.ids[self.sources[m]]
        items = st.outputs[self.sources[m]]
        if not isinstance(items, list):
            return TypeError(
                f"step {step.id!r} maps over {source!r}, whose output is a "
                f"{type(items).__name__}, not a list; make {source!r} return a list"
            )
        limit = step.max_items or MAX_ITEMS
        if len(items) > limit:
            return ValueError(
                f"step {step.id!r} maps over {len(items):,} items of {source!r}, over its "
                f"max_items of {limit:,}; raise max_items= on {step.id!r} or split the list"
            )
        if not items:
            return []
        self._append(m, step, items)
        return None

    def _append(self, m: int, step: Step, items: list[Any]) -> None:
        """Add one instance per item to every per-step list of the run, then to the scheduler."""
        graph, plan, st = self.plan.graph, self.plan, self.state
        n, first = len(items), len(graph.ids)
        shared = {graph.ids[p]: st.outputs[p] for p in graph.preds[m] if p != self.sources[m]}
        action: Action = plan.actions[m]  # planned for an instance (``item_step``)
        name = _item_name(step)
        ids = [f"{step.id}[{k}]" for k in range(n)]
        graph.ids.extend(ids)
        graph.index.update(zip(ids, range(first, first + n), strict=True))
        graph.steps.extend(dataclasses.replace(step, id=sid, map_over=None) for sid in ids)
        graph.preds.extend([()] * n)
        graph.succs.extend([()] * n)
        _extend(
            plan.actions,
            [_instance_action(action, name, shared, item, k) for k, item in enumerate(items)],
        )
        _extend(plan.executor_of, [plan.executor_of[m]] * n)
        _extend(plan.checks, [None] * n)
        if plan.cache is not None:
            _extend(plan.cache, [None] * n)
        st.outputs.extend([None] * n)
        st.attempts.extend([0] * n)
        st.started.extend(array("d", (0.0,)) * n)
        st.finished.extend(array("d", (0.0,)) * n)
        self._timeouts.extend([step.timeout] * n)
        self.instances[m] = new = self.sched.expand(m, n, step.map_concurrency)
        self._events.emit(EventKind.STEP_STARTED, m, instances=n)
        if self._earlier and self._records is not None:
            kept = [self._earlier[sid] for sid in ids if sid in self._earlier]
            self.sched.restore(self._records.restore(kept))
        if self._events.listening:
            for j in new:
                if not self.sched.state[j].is_final():
                    self._events.state(j, StepState.READY, None)

    def close(self, m: int) -> tuple[StepState, Any]:
        """Every instance of ``m`` is final: ``m``'s state and its output (the list, in item
        order; a skipped instance gives None), its error, or the reason it was cancelled."""
        states, st, ids = self.sched.state, self.state, self.plan.graph.ids
        mine = self.instances.pop(m, range(0))
        failed = [j for j in mine if states[j] is FAILED]
        if failed:
            first = st.errors.get(failed[0])
            cause = first.reason if first is not None else "failed"
            reason = f"{len(failed)} of {len(mine)} instances failed; {ids[failed[0]]}: {cause}"
            return FAILED, StepFailed(ids[m], first, reason)
        cancelled = next((j for j in mine if states[j] is CANCELLED), None)
        if cancelled is not None:
            return CANCELLED, self.sched.reason.get(cancelled, "cancelled")
        return SUCCEEDED, [st.outputs[j] if states[j] is SUCCEEDED else None for j in mine]


def _item_name(step: Step) -> str | None:
    """The name under which an instance's inputs carry its item: the first parameter of the
    mapped function (``item_step`` made it the first dependency of the planned action);
    None for a kind's step, whose templates read the item as ``{{ item }}``."""
    return None if step.fn is None else item_step(step).depends_on[0]


def _instance_action(
    action: Action, name: str | None, shared: dict[str, Any], item: Any, k: int
) -> Action:
    inputs = ItemInputs(shared if name is None else {**shared, name: item}, item, k)
    bind = functools.partial(_call_with_item, action.bind, inputs)
    return dataclasses.replace(action, bind=bind)


def _extend(per_step: Sequence[Any], values: list[Any]) -> None:
    """Append to a plan's per-step list (a list, though the frozen plan shows a Sequence)."""
    assert isinstance(per_step, list)
    per_step.extend(values)
