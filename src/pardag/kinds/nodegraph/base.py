"""The base of every node kind: checks common to all nodes, and templates rendered per attempt.

Templates. String fields that hold text (``text``, ``value``, ``cache_key``, the ``http``
fields) are rendered per attempt by :func:`pardag.templates.render` with the usual names
(``inputs``, ``steps.ID.output``, ``params``, ``trigger``, ``env``), each input by its source's
id (as conditions read them), ``variable`` (the run's variables) and ``const`` (its
constants): ``"Hello {{ variable.user }}, total {{ sum }}"``. Values become text by
``data.node_text`` (a whole float reads ``42``). Since every node's templates read
them, the run-wide ``GraphState`` (which the ``state`` kinds change) is defined here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.kinds.nodegraph.data import NodeError, has_template, node_text
from pardag.readonly import freeze
from pardag.states import ExecutorName
from pardag.templates import namespace, render, template_problems

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["GraphState", "NodeKind", "bind_inputs", "graph_state", "template_names"]

_EXECUTORS = (ExecutorName.INLINE, ExecutorName.THREADS)


@dataclass
class GraphState:
    """The run-wide state of a node graph; change it only while holding ``ctx.lock``."""

    variables: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int | float] = field(default_factory=dict)
    accumulators: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name: (op, value)
    cache: dict[str, Any] = field(default_factory=dict)


def graph_state(ctx: RunContext) -> GraphState:
    """The run's ``GraphState``, made on first use."""
    return ctx.shared("nodegraph", GraphState)


def template_names(inputs: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
    """The names node templates read, read-only views all: each input by its source's id, as
    in conditions, then ``pardag.templates.namespace`` (which wins on a clash) with
    ``variable`` and ``const``."""
    state = graph_state(ctx)
    with ctx.lock:
        variables, constants = dict(state.variables), dict(state.constants)
    by_id = {source: freeze(value) for source, value in inputs.items()}
    return {**by_id, **namespace(inputs, ctx, variable=variables, const=constants)}


def bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A node's call takes its inputs by source id, whole."""
    return (inputs,), {}


class NodeKind:
    """A node kind: ``compute(params, inputs, ctx)`` with its templated fields rendered.

    Subclasses set ``fields`` (the data keys they read), ``templated`` (those rendered per
    attempt), ``min_inputs`` (edges it needs, checked at validation), ``item_templates``
    (True: it can be mapped, its templates reading the item) and override ``check``
    (validation messages) and ``compute``.
    """

    fields: tuple[str, ...] = ()
    templated: tuple[str, ...] = ()
    item_templates = False
    min_inputs = 0
    noun = "node"

    def problems(self, step: Step) -> list[str]:
        """Executor, input count, template syntax, then the kind's own checks."""
        out = []
        if step.executor is not None and step.executor not in _EXECUTORS:
            out.append(
                f"executor {step.executor!r} cannot run a node-graph node (its state is the "
                "run's memory); use 'inline' or 'threads'"
            )
        got = len(step.depends_on)
        if got < self.min_inputs:
            out.append(self.too_few(got) + "; draw edges into it from the nodes it reads")
        for key in self.templated:
            out += template_problems(step.params.get(key), f"data.{key}")
        return out + self.check(step.params, step)

    def too_few(self, got: int) -> str:
        """The message for a node with ``got`` inputs, fewer than it needs."""
        plural = "s" if self.min_inputs != 1 else ""
        return f"{self.noun} needs {self.min_inputs} input{plural}, got {got}"

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        """What is wrong with the node's data, each message saying what to write."""
        return []

    def action(self, step: Step, ctx: RunContext) -> Action:
        """Call ``compute`` with the node's data, rendering the templated fields first."""
        params, executor = step.params, step.executor or ExecutorName.INLINE
        rendered = [k for k in self.templated if k in params and has_template(params[k])]
        if not rendered and not self.min_inputs:  # most nodes: nothing to check or render
            return Action(functools.partial(self.compute, params, ctx=ctx), executor, bind_inputs)
        compute, minimum, too_few = self.compute, self.min_inputs, self.too_few
        where = f"step {step.id!r} data"

        def run(inputs: Mapping[str, Any]) -> Any:
            if len(inputs) < minimum:
                raise NodeError(too_few(len(inputs)))
            values = params
            if rendered:
                names = template_names(inputs, ctx)
                values = {**params}
                for key in rendered:
                    values[key] = render(params[key], names, where=f"{where}.{key}", text=node_text)
            return compute(values, inputs, ctx)

        return Action(run, executor, bind_inputs)

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        """The node's output from its (rendered) data and its inputs by source id."""
        raise NotImplementedError
