"""Control kinds: ``condition`` chooses a branch, ``merge`` joins branches.

A condition step's function returns a value; its handle is ``"true"``/``"false"`` for a bool
and ``str(value)`` otherwise (a case name). Steps that depend on it with
``branch={cond: handle}`` run only when that handle was chosen.

A merge step defaults to the ``any_success`` trigger, so it runs after an if/else whichever
branch ran. Without a function its output is the mapping of the inputs that succeeded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.errors import ArgumentError
from pardag.expressions import compile_expression, expression_names
from pardag.kinds.base import Action, RunContext
from pardag.kinds.python import PythonKind
from pardag.states import ExecutorName

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "MAX_MERGE_DEPTH",
    "ConditionKind",
    "MergeKind",
    "branch_handle",
    "nested_deeper",
]


def branch_handle(value: Any) -> str:
    """The handle a condition's output selects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ConditionKind(PythonKind):
    """A Python function, or ``params={"expression": ...}``, whose value picks the branch.

    An expression reads each input by its dependency's id, ``inputs``, ``steps.ID.output``,
    ``params`` and ``trigger`` (the run's params); see ``pardag.expressions``.
    """

    fields: tuple[str, ...] = ("expression",)
    cluster = False  # control: stays in the runner under a run-wide dask (scale-out.md)
    item_inputs = False  # one branch for the whole run: not mapped
    expressions: tuple[str, ...] = ("expression",)
    """The fields that are expressions (validation checks what they read)."""

    def problems(self, step: Step) -> list[str]:
        if step.fn is not None:
            return super().problems(step)
        source = step.params.get("expression")
        if not isinstance(source, str):
            return ["a condition step needs a function or params={'expression': '...'}"]
        try:
            compile_expression(source, where="expression")
        except ArgumentError as exc:
            return [str(exc)]
        return []

    def action(self, step: Step, ctx: RunContext) -> Action:
        if step.fn is not None:
            action = super().action(step, ctx)
        else:
            expr = compile_expression(
                step.params["expression"], where=f"step {step.id!r} expression"
            )
            action = Action(expr.evaluate, ExecutorName.INLINE, _bind_names)
        action.handle = branch_handle
        return action


def _bind_names(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (expression_names(inputs, params),), {}


MAX_MERGE_DEPTH = 100
"""Deepest a merge's output may nest (as deep as a workflow file may). Each merge in a chain
nests its inputs one level deeper; 500 levels broke what prints and records outputs."""


def _merge_inputs(step_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping of the inputs, refusing one nested past ``MAX_MERGE_DEPTH``."""
    if nested_deeper(inputs, MAX_MERGE_DEPTH):
        raise ValueError(
            f"merge step {step_id!r}: its output would nest more than {MAX_MERGE_DEPTH} "
            "levels deep (each merge in a chain adds a level); give a merge a function "
            "that keeps only what later steps need, or chain fewer merges"
        )
    return dict(inputs)


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests mappings and lists more than ``limit`` levels deep; a loop,
    not recursion, so any depth is measured."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, Mapping | list | tuple))
    return False


class MergeKind(PythonKind):
    """Joins branches; see the module docstring."""

    fields: tuple[str, ...] = ()
    cluster = False  # control: stays in the runner under a run-wide dask (scale-out.md)
    item_inputs = False  # it joins branches: not mapped

    def problems(self, step: Step) -> list[str]:
        return [] if step.fn is None else super().problems(step)

    def action(self, step: Step, ctx: RunContext) -> Action:
        if step.fn is not None:
            return super().action(step, ctx)
        return Action(functools.partial(_merge_inputs, step.id), ExecutorName.INLINE, _bind_inputs)


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


KINDS = {"condition": ConditionKind(), "merge": MergeKind()}
