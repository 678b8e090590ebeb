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
from pardag.executors.payload import send_problems
from pardag.expressions import compile_expression
from pardag.kinds import KINDS, kind_problems
from pardag.kinds.control import branch_handle
from pardag.kinds.python import bind_function
from pardag.model import ID_PATTERN, Graph, Settings, Step, Workflow, settings_problems
from pardag.states import Trigger
from pardag.validate_reads import read_problems

__all__ = ["compile_workflow", "item_step", "mappable"]


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
                if dep == s.map_over:  # say what the name is for
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
        if size is None:
            known = ", ".join(settings.pools) or "none"
            msgs.append(
                f"uses pool {pool!r}, which is not declared (pools: {known}); "
                f"declare it with pools={{{pool!r}: N}}"
            )
        elif not isinstance(amount, int) or not 1 <= amount <= size:
            msgs.append(
                f"asks for {amount!r} of pool {pool!r}, which has {size}; ask for 1 to {size}"
            )
    if s.when is not None:
        msgs += _when_problems(s)
    if s.cache is not None:
        msgs += cache_problems(s)
    if s.map_over is not None:
        mapped = _map_problems(s)
        if mapped:  # its function cannot be checked as an instance's
            return [Problem(s.id, m) for m in msgs + mapped]
        s = item_step(s)
    msgs += kind_problems(s)
    msgs += send_problems(s, settings.executor)
    return [Problem(s.id, m) for m in msgs] if msgs else []


def item_step(step: Step) -> Step:
    """The step each instance of mapped ``step`` runs: its function's first parameter takes
    the item (the input named after it), its other dependencies are passed whole. A kind's
    step (shell, http) reads the item in its templates instead, as ``{{ item }}``."""
    others = tuple(d for d in step.depends_on if d != step.map_over)
    if step.fn is None:
        return dataclasses.replace(step, depends_on=others, map_over=None)
    first = _item_parameter(step.fn)
    assert first is not None  # validated
    return dataclasses.replace(step, depends_on=(first, *others), map_over=None)


def _map_problems(s: Step) -> list[str]:
    """What a mapped step must be: a Python function taking the item first, or a shell or
    http step, with positive limits; what this release cannot map yet is said, not ignored."""
    out = []
    for name in ("map_concurrency", "max_items"):
        value = getattr(s, name)
        if value is not None and (type(value) is not int or value < 1):
            out.append(f"{name} must be a positive int, got {value!r}")
    if s.fn is None:  # a kind's step: its templates read the item
        if not mappable(s.kind):
            return [*out, _UNMAPPABLE.format(kind=s.kind)]
    elif s.kind != "python" or not callable(s.fn):
        return [*out, "only a Python function can be mapped yet; give the step a function"]
    elif _item_parameter(s.fn) is None:
        out.append("a mapped function takes the item as its first parameter; add one")
    if s.when is not None or s.cache is not None:
        out.append("when= and cache= are not supported on a mapped step yet; remove them")
    return out


def mappable(kind: str) -> bool:
    """Whether a step of ``kind`` without a function can be mapped: its templates read
    ``{{ item }}`` (a kind that lists its template names, or a node kind that says so)."""
    found = KINDS.get(kind)
    return hasattr(found, "template_names") or getattr(found, "item_templates", False) is True


_UNMAPPABLE = (
    "a {kind} step cannot be mapped yet: only a Python function given in Python, or a shell "
    "or http step (whose templates read {{{{ item }}}}), can; map one of those instead"
)


def _item_parameter(fn: Callable[..., Any] | None) -> str | None:
    """The name of ``fn``'s first positional parameter (a mapped step's item), if any."""
    try:
        params = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return next((p.name for p in params if p.kind in positional), None)


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
