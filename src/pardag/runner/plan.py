"""A run's set-up, decided once before it starts: a frozen ``Plan`` and its scheduler.

Everything here is computed from the workflow, its settings and the run's context, without
touching the event loop, so that nothing about a step's kind, executor, precondition, cache or
chain is decided inside the hot loop. ``make_plan`` builds the plan; ``make_scheduler`` the
scheduler that follows it (executors' capacities become pools when ``max_concurrency`` is
auto); ``past_durations`` reads the duration history that orders a recorded workflow's steps.
"""

from __future__ import annotations

import dataclasses
import inspect
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pardag.caching import CachePolicy, Encoder, cache_policies
from pardag.errors import ArgumentError
from pardag.executors import default_capacity
from pardag.expressions import compile_expression, expression_names
from pardag.kinds import Action, RunContext, action_for
from pardag.kinds.base import no_inputs
from pardag.kinds.python import bind_function
from pardag.model import Graph, Settings, Step
from pardag.runner.chains import chain_table, executor_pool, may_hand_ahead
from pardag.scheduler import Pool, Scheduler
from pardag.states import ExecutorName, Mode
from pardag.store.base import Store, StoreError
from pardag.validate import item_step, on_dask, when_step

__all__ = [
    "HISTORY_RUNS",
    "Check",
    "Plan",
    "make_plan",
    "make_scheduler",
    "past_durations",
    "placed",
    "pools_only",
    "precondition",
]

Check = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
"""A step's ``when`` as a test over (inputs, params)."""

HISTORY_RUNS = 10
"""Recent runs of a workflow whose step durations order its next run (duration history)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run does with each step, decided before it starts; indexed by step number.

    ``durable``: the run is recorded in a run store (write-ahead: a step's start is journaled
    before it is dispatched, its end committed before its dependents are released).
    ``exact_events``: someone takes every event, in order, as it happens (a listener, or the
    run store), so no step may start unannounced. ``chain`` and ``hand_ahead`` are the thread
    fast paths (``pardag.runner.chains``); both need a run that is neither, and a chain also
    a run without mapped steps (hand-ahead serves their instances too).
    """

    workflow: str
    graph: Graph
    settings: Settings
    actions: Sequence[Action]
    executor_of: Sequence[str]
    checks: Sequence[Check | None]
    cache: Sequence[CachePolicy | None] | None
    durable: bool
    exact_events: bool
    chain: Mapping[int, int] | None
    hand_ahead: bool
    durations: Sequence[float] | None = None
    """Each step's duration from the run history (``past_durations``), to order ready steps."""
    lookups: bool = True
    """False (``cache=False``): cached steps run, their fresh outputs still stored."""


def make_plan(
    graph: Graph,
    settings: Settings,
    ctx: RunContext,
    *,
    durable: bool,
    exact_events: bool,
    encoder: Encoder | None = None,
    durations: Sequence[float] | None = None,
    lookups: bool = True,
) -> Plan:
    """The plan of one run of ``graph`` (a compiled workflow) with ``settings``."""
    steps = graph.steps
    mapped = any(s.map_over is not None for s in steps)
    built = [item_step(s) if s.map_over else s for s in steps] if mapped else steps
    if settings.executor == ExecutorName.DASK:
        built = [placed(s, settings) for s in built]
    actions = _actions(built, ctx)
    executor_of = [pick_executor(s, a, settings) for s, a in zip(steps, actions, strict=True)]
    checks = [precondition(when_step(s) if s.map_over else s) for s in steps]  # an instance's
    cache = cache_policies(steps, ctx, stored=durable, encoder=encoder)
    fast = not exact_events and not durable
    chained = fast and not mapped  # a chain is planned: instances join as the run goes
    chain = chain_table(graph, executor_of, checks, cache, settings.mode) if chained else None
    ahead = fast and may_hand_ahead(steps, executor_of, settings.mode)
    return Plan(
        ctx.workflow,
        graph,
        settings,
        actions,
        executor_of,
        checks,
        cache,
        durable,
        exact_events,
        chain,
        ahead,
        durations,
        lookups,
    )


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


def placed(step: Step, settings: Settings) -> Step:
    """``step`` as its kind must build it under a run-wide ``dask``: a kind's step that the
    run sends to the cluster (``validate.on_dask``: a shell, http, code step...) as if it
    named ``executor: dask``. A Python function is left as it is: ``pick_executor`` places it."""
    if step.executor is not None or step.fn is not None or "function" in step.params:
        return step
    if not on_dask(step, settings):
        return step
    return dataclasses.replace(step, executor=ExecutorName.DASK)


def pick_executor(step: Step, action: Action, settings: Settings) -> str:
    """The step's own choice; else the kind's, unless it is the plain-function default
    ``threads``, which the run's ``executor`` setting replaces (a kind that asks for
    ``async``, ``inline`` or a code step's worker ``processes`` needs that one; a control
    step's function, a condition's or a merge's, stays in the runner under ``dask``)."""
    if step.executor is not None or action.executor != ExecutorName.THREADS:
        return action.executor
    if settings.executor == ExecutorName.DASK and not on_dask(step, settings):
        return action.executor
    return settings.executor or action.executor


def precondition(step: Step) -> Check | None:
    """The step's ``when`` as a check over (inputs, params), or None when it has none."""
    when = step.when
    if when is None:
        return None
    if isinstance(when, str):
        expr = compile_expression(when, where=f"step {step.id!r} when")

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


def pools_only(resources: Mapping[str, int], pools: Mapping[str, object]) -> Mapping[str, int]:
    """The part of a step's ``resources`` that names pardag pools."""
    if not resources or all(name in pools for name in resources):
        return resources
    return {name: amount for name, amount in resources.items() if name in pools}


def make_scheduler(plan: Plan) -> Scheduler:
    """The scheduler of the run: its limit, its pools, and when ``max_concurrency`` is 0
    (auto) one pool per executor that has a capacity of its own."""
    s = plan.settings
    pools = {
        name: Pool(*spec) if isinstance(spec, tuple) else Pool(spec)
        for name, spec in s.pools.items()
    }
    resources: list[Mapping[str, int]] = [
        pools_only(step.resources, s.pools) if name == ExecutorName.DASK else step.resources
        for step, name in zip(plan.graph.steps, plan.executor_of, strict=True)
    ]  # a dask step's other resources are Dask worker resources (pardag.executors.dask)
    if not s.max_concurrency:
        units: dict[str, dict[str, int]] = {}
        for i, name in enumerate(plan.executor_of):
            cap = default_capacity(name)
            if cap is not None:
                pool = executor_pool(name)
                pools.setdefault(pool, Pool(cap))  # hand-ahead may widen it
                one = units.setdefault(name, {pool: 1})
                resources[i] = {**resources[i], pool: 1} if resources[i] else one
    sched = Scheduler(
        plan.graph,
        mode=s.mode,
        limit=s.max_concurrency or None,
        pools=pools,
        durations=plan.durations,
        resources=resources,
    )
    sched.log_all = plan.exact_events  # else only what the runner cannot know is logged
    return sched


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
