"""A workflow checked against everything that decides whether it can run, then compiled.

``compile_workflow(wf)`` collects every problem at once, each naming the step and the fix:
duplicate ids, unknown dependencies (with the closest existing id), a cycle (printed as its
path), settings, and each step's own fields: its kind's parameters (``pardag.kinds``), its
``cache`` (``pardag.caching``) and its ``when`` (``pardag.expressions``), and what its
templates and expressions read (``pardag.validate_reads``). Nothing runs when
there is a problem. A valid workflow becomes a ``Graph``: steps numbered in declaration order
with flat predecessor and successor tuples, and a topological order.

Every algorithm here is iterative, so a 100,000-step chain or cycle never meets Python's
recursion limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gc
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pardag.caching import cache_problems
from pardag.errors import ArgumentError, CycleError, Problem, ValidationError
from pardag.executors.dask import missing_dask
from pardag.executors.payload import send_problems
from pardag.expressions import compile_expression
from pardag.kinds import KINDS, kind_problems
from pardag.kinds.control import branch_handle
from pardag.kinds.python import bind_function
from pardag.model import ID_PATTERN, Graph, Settings, Step, Workflow, settings_problems
from pardag.states import ISOLATIONS, ExecutorName, Trigger
from pardag.validate_reads import read_problems

__all__ = ["compile_workflow", "item_inputs", "item_step", "mappable", "on_dask", "when_step"]


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (allocation-heavy work that makes no cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def compile_workflow(wf: Workflow) -> Graph:
    """The ``Graph`` of ``wf``; raises ``ValidationError`` (or ``CycleError``) listing every
    problem found. ``Workflow.compile`` calls it and keeps the result."""
    with _no_gc():  # a big graph is many small lists: collecting midway only costs
        return _compile(wf)


def _compile(wf: Workflow) -> Graph:
    steps = list(wf.steps.values())
    ids = [s.id for s in steps]
    index = {sid: i for i, sid in enumerate(ids)}
    problems = [
        Problem(d, "is declared more than once; give each step a unique id")
        for d in dict.fromkeys(wf.duplicates)
    ]
    problems += [p for s in steps for p in _step_problems(s, wf.settings)]
    problems += [Problem(None, m) for m in settings_problems(wf.settings)]
    problems += read_problems(wf)
    preds: list[list[int]] = [[] for _ in steps]
    succs: list[list[int]] = [[] for _ in steps]
    handles: dict[tuple[int, int], str] = {}
    for i, s in enumerate(steps):
        mine = preds[i]
        for dep in s.depends_on:
            j = index.get(dep)
            if j is None:
                problem = _unknown_dep(dep, index)
                if dep in s.map_sources():  # say what the name is for
                    problem = "maps over" + problem.removeprefix("depends on")
                problems.append(Problem(s.id, problem))
            else:
                mine.append(j)
        if len(mine) > 1 and len(set(mine)) < len(mine):
            mine[:] = dict.fromkeys(mine)  # a dependency named twice counts once
        for j in mine:
            succs[j].append(i)
        for dep, handle in s.branch.items():
            if dep not in s.depends_on:
                problems.append(
                    Problem(
                        s.id,
                        f"branch names {dep!r}, which is not in depends_on; "
                        f"add {dep!r} to depends_on",
                    )
                )
            elif dep in index:
                if wf.steps[dep].kind != "condition":
                    problems.append(
                        Problem(
                            s.id,
                            f"branch names {dep!r}, which is a "
                            f"{wf.steps[dep].kind!r} step, not a condition; "
                            "make it kind='condition' or drop branch",
                        )
                    )
                handles[(index[dep], i)] = branch_handle(handle)
    order, cycle = _toposort(preds, succs)
    if cycle:
        path = [ids[i] for i in cycle]
        problems.append(
            Problem(
                path[0],
                "is part of a cycle: " + " -> ".join(path) + "; remove one of these dependencies",
            )
        )
        raise CycleError(wf.name, _placed(wf, problems), path)
    if problems:
        raise ValidationError(wf.name, _placed(wf, problems))
    # Tuples are a third smaller than lists; a million-step graph keeps two per step.
    frozen_preds = [tuple(p) for p in preds]
    frozen_succs = [tuple(s) for s in succs]
    return Graph(steps, ids, index, frozen_preds, frozen_succs, handles, order)


def _placed(wf: Workflow, problems: list[Problem]) -> list[Problem]:
    """``problems`` with the file location of their step, for workflows read from files."""
    if not wf.locations:
        return problems
    return [
        Problem(p.step, p.message, wf.locations.get(p.step) or wf.source)
        if p.where is None and p.step is not None
        else p
        for p in problems
    ]


def _unknown_dep(dep: str, index: Mapping[str, int]) -> str:
    msg = f"depends on unknown step {dep!r}"
    close = difflib.get_close_matches(dep, index.keys(), n=1) if len(index) < 20_000 else []
    return msg + (f"; did you mean {close[0]!r}?" if close else "; declare it or fix the name")


def _step_problems(s: Step, settings: Settings) -> list[Problem]:
    msgs: list[str] = []
    if not isinstance(s.id, str) or not ID_PATTERN.fullmatch(s.id):
        msgs.append("the id may use only letters, digits, '_', '.' and '-'")
    if s.timeout is not None and not (isinstance(s.timeout, int | float) and s.timeout > 0):
        msgs.append(f"timeout must be a positive number of seconds, got {s.timeout!r}")
    if s.retry is not None:
        msgs += s.retry.problems()
    if s.trigger is not Trigger.ALL_SUCCESS and s.trigger not in Trigger._value2member_map_:
        msgs.append(
            f"trigger {s.trigger!r} is unknown; use one of " + ", ".join(t.value for t in Trigger)
        )
    if type(s.priority) is not int:
        msgs.append(f"priority must be an int, got {s.priority!r}")
    if s.estimate is not None and not s.estimate >= 0:
        msgs.append(f"estimate must be >= 0 seconds, got {s.estimate!r}")
    for pool, amount in s.resources.items():
        size = _pool_size(settings.pools.get(pool))
        if size is None and on_dask(s, settings):  # a Dask worker resource (scale-out.md)
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
                msgs.append(f"asks for {amount!r} of Dask worker resource {pool!r}; ask for 1+")
        elif size is None:
            known = ", ".join(settings.pools) or "none"
            msgs.append(
                f"uses pool {pool!r}, which is not declared (pools: {known}); "
                f"declare it with pools={{{pool!r}: N}}"
            )
        elif not isinstance(amount, int) or not 1 <= amount <= size:
            msgs.append(
                f"asks for {amount!r} of pool {pool!r}, which has {size}; ask for 1 to {size}"
            )
    if s.cache is not None:
        msgs += cache_problems(s)
    if s.isolation is not None:
        msgs += _isolation_problems(s, settings)
    if s.map_over is not None:
        mapped = _map_problems(s)
        if mapped:  # its function cannot be checked as an instance's
            return [Problem(s.id, m) for m in msgs + mapped]
        msgs += _when_problems(when_step(s))
        s = item_step(s)
    else:
        msgs += _when_problems(s)
        if s.allow_failures is not None:
            msgs.append("allow_failures applies to a mapped step only; map it or remove it")
    msgs += kind_problems(s)
    if s.executor == ExecutorName.DASK and not _may_run_on_a_worker(s.kind):
        msgs.append(
            f"a {s.kind} step runs in the runner, not on the dask executor: Python, shell, "
            "http, lua, javascript and wasm steps can (docs/scale-out.md); remove executor"
        )
    if on_dask(s, settings) and (missing := missing_dask()) is not None:
        msgs.append(missing)
    msgs += send_problems(s, settings.executor)
    return [Problem(s.id, m) for m in msgs] if msgs else []


def _isolation_problems(s: Step, settings: Settings) -> list[str]:
    """``isolation`` is ``process``, on a step that runs on ``dask``."""
    if s.isolation not in ISOLATIONS:
        return [
            f"isolation={s.isolation!r} is not known; use 'process' (each attempt in a "
            "subprocess of its Dask worker) or leave it out"
        ]
    if not on_dask(s, settings):
        return [
            "isolation='process' is for a Python function on the dask executor (the "
            "processes executor runs every step in a worker process already); set "
            "executor='dask', or remove isolation"
        ]
    return []


def on_dask(step: Step, settings: Settings) -> bool:
    """Whether ``step`` runs on the ``dask`` executor: by its own ``executor``, or by its
    workflow's when it does work a worker can do (a plain function, a Python code step
    without ``limits``, a shell, http, Lua, JavaScript or wasm step); control steps (delay,
    approval, condition, variables...) stay in the runner, an ``async def`` on the loop.
    Then a resource that is no pool is a Dask worker resource."""
    if step.executor is not None:
        return step.executor == ExecutorName.DASK
    if settings.executor != ExecutorName.DASK or not _may_run_on_a_worker(step.kind):
        return False
    if step.kind != "python":
        return True
    if "code" in step.params:
        return "limits" not in step.params  # limits hold in a worker process only
    return not inspect.iscoroutinefunction(step.fn)


def _may_run_on_a_worker(kind: str) -> bool:
    """Whether steps of ``kind`` can run on a Dask worker (``pardag.kinds.cluster``)."""
    return bool(getattr(KINDS.get(kind), "cluster", False))


def item_step(step: Step) -> Step:
    """The step each instance of mapped ``step`` runs: its function's first parameters take
    the items (one per list it maps over, the inputs named after them), its other
    dependencies are passed whole. A kind's step (shell, http) reads the item in its
    templates instead, as ``{{ item }}``."""
    sources = step.map_sources()
    others = tuple(d for d in step.depends_on if d not in sources)
    if step.fn is None:  # a code step takes them as inputs 'item' and 'item_index'
        keyed = ("item", "item_index") if item_inputs(step.kind) else ()
        return dataclasses.replace(step, depends_on=(*others, *keyed), map_over=None)
    firsts = _item_parameters(step.fn)[: len(sources)]
    assert len(firsts) == len(sources)  # validated
    return dataclasses.replace(step, depends_on=(*firsts, *others), map_over=None)


def when_step(step: Step) -> Step:
    """The step whose dependencies an instance's ``when`` function is called with: the
    items first, as its mapped function; a kind's step's single item as ``item``."""
    if step.fn is not None or item_inputs(step.kind):
        return item_step(step)
    instance = item_step(step)
    return dataclasses.replace(instance, depends_on=("item", *instance.depends_on))


def _map_problems(s: Step) -> list[str]:
    """What a mapped step must be: a Python function taking the items first, or a shell or
    http step, with positive limits; what this release cannot map yet is said, not ignored."""
    out = [f"{name} must be a positive int, got {value!r}" for name, value in _limits(s)]
    sources = s.map_sources()
    if (
        not sources
        or len(set(sources)) < len(sources)
        or not all(isinstance(x, str) for x in sources)
    ):
        out.append(f"map_over={s.map_over!r} must name one step, or several different ones")
    if not _allowance_ok(s.allow_failures):
        out.append(
            f"allow_failures={s.allow_failures!r} must be a number of instances (an int >= 0) "
            "or a fraction of them (a float from 0 to 1)"
        )
    if s.fn is None:  # a kind's step: its templates read the item
        if not mappable(s.kind):
            return [*out, _UNMAPPABLE.format(kind=s.kind)]
    elif s.kind != "python" or not callable(s.fn):
        return [*out, "only a Python function can be mapped yet; give the step a function"]
    elif len(_item_parameters(s.fn)) < len(sources):
        many = f"its {len(sources)} items" if len(sources) > 1 else "the item"
        out.append(f"a mapped function takes {many} as its first parameters; add them")
    if s.cache is not None:
        out.append("cache= is not supported on a mapped step yet; remove it")
    return out


def _limits(s: Step) -> list[tuple[str, Any]]:
    """A mapped step's limits that are not positive ints, as (name, value)."""
    values = (("map_concurrency", s.map_concurrency), ("max_items", s.max_items))
    return [(n, v) for n, v in values if v is not None and (type(v) is not int or v < 1)]


def _allowance_ok(value: Any) -> bool:
    """Whether ``allow_failures`` is None, a count (an int >= 0) or a fraction (0 to 1)."""
    if value is None:
        return True
    if type(value) is int:
        return value >= 0
    return type(value) is float and 0.0 <= value <= 1.0


def mappable(kind: str) -> bool:
    """Whether a step of ``kind`` without a function can be mapped: its templates read
    ``{{ item }}`` (a kind that lists its template names, or a node kind that says so)."""
    found = KINDS.get(kind)
    if hasattr(found, "template_names") or item_inputs(kind):
        return True
    return getattr(found, "item_templates", False) is True


def item_inputs(kind: str) -> bool:
    """Whether a mapped step of ``kind`` gets its item as inputs ``item`` and ``item_index``
    (a code step's ``run(inputs)``), rather than in its templates."""
    return getattr(KINDS.get(kind), "item_inputs", False) is True


_UNMAPPABLE = (
    "a {kind} step cannot be mapped yet: only a Python function given in Python, or a step "
    "whose templates read {{{{ item }}}} (shell, http, text, number, delay) or a code step "
    "(python, lua, javascript: run(inputs) gets inputs['item']), can; map one of those instead"
)


def _item_parameters(fn: Callable[..., Any] | None) -> list[str]:
    """The names of ``fn``'s positional parameters (a mapped step's items come first)."""
    try:
        params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in positional]


def _when_problems(s: Step) -> list[str]:
    """A ``when`` must compile (what it reads is checked by ``pardag.validate_reads``)."""
    if s.when is None:
        return []
    if callable(s.when):
        return _when_callable_problems(s.when, s.depends_on)
    try:
        compile_expression(s.when, where="when")
    except ArgumentError as exc:
        return [str(exc)]
    return []


def _when_callable_problems(when: Callable[..., Any], deps: tuple[str, ...]) -> list[str]:
    if inspect.iscoroutinefunction(when):
        return ["when= must be a plain function returning a bool, not an async def"]
    binder = bind_function(when, deps)
    return [f"when= {binder}"] if isinstance(binder, str) else []


def _pool_size(spec: int | tuple[int, float] | None) -> int | None:
    if spec is None:
        return None
    return spec[0] if isinstance(spec, tuple) else spec


def _toposort(preds: list[list[int]], succs: list[list[int]]) -> tuple[list[int], list[int]]:
    """Kahn's algorithm in declaration order; returns (order, a cycle path or [])."""
    n = len(preds)
    waiting = [len(p) for p in preds]
    order = [i for i in range(n) if waiting[i] == 0]
    head = 0
    while head < len(order):
        for s in succs[order[head]]:
            waiting[s] -= 1
            if waiting[s] == 0:
                order.append(s)
        head += 1
    if len(order) == n:
        return order, []
    return order, _find_cycle(preds, [i for i in range(n) if waiting[i] > 0])


def _find_cycle(preds: list[list[int]], stuck: list[int]) -> list[int]:
    """A cycle among the steps Kahn's algorithm could not order, walking predecessors."""
    blocked = set(stuck)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = stuck[0]
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(p for p in preds[node] if p in blocked)
    cycle = path[seen[node] :]
    cycle.reverse()  # walked against the edges; show it along them
    return [*cycle, cycle[0]]
