"""The run-wide state nodes: variable, counter, accumulator, cache, context and constant.

Variables, constants, counters, accumulators and the cache live in the run's ``RunContext``
(one ``GraphState`` per run, never shared between runs) and change only under ``ctx.lock``, so
counters and accumulators stay exact when nodes run in parallel on threads. Constants
(``constant`` nodes) and context variables (``context`` nodes) are defined when the run
starts, before any node runs, so every node can read them whatever the edges say; a
``variable`` node's ``set`` happens when that node runs, so a ``get`` elsewhere sees it only if
an edge orders the two (a ``get`` of a variable that is not set fails, naming it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.kinds.nodegraph.base import GraphState, NodeKind, graph_state
from pardag.kinds.nodegraph.data import (
    NodeError,
    checked_text,
    choice,
    first_input,
    has_template,
    is_number,
    node_text,
    nonempty_str,
    show,
)

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "KINDS",
    "AccumulatorKind",
    "CacheKind",
    "ConstantKind",
    "ContextKind",
    "CounterKind",
    "VariableKind",
]


def _value_or_first(params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
    return params["value"] if "value" in params else first_input(inputs)


def _needs_value(params: Mapping[str, Any], step: Step, what: str) -> list[str]:
    if "value" in params or step.depends_on:
        return []
    return [f"{what} needs a value: give data.value or draw an edge into it from a node"]


class VariableKind(NodeKind):
    """A run-wide variable: ``set`` stores a value, ``get`` reads it.

    ``set`` stores ``data.value`` (rendered), else the first input. Either outputs
    ``{"var_name": NAME, "operation": "set" | "get", "value": VALUE}``, as the engines of
    node-graph files do, so an ``extract`` of ``value`` after it reads the value.
    """

    fields = ("var_name", "var_op", "value")
    templated = ("value",)

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = nonempty_str(params, "var_name", "total") + choice(params, "var_op", ("set", "get"))
        if params.get("var_op") == "set":
            out += _needs_value(params, step, "a variable set")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        name, op, state = params["var_name"], params["var_op"], graph_state(ctx)
        if op == "set":
            value = _value_or_first(params, inputs)
            with ctx.lock:
                state.variables[name] = value
            return {"var_name": name, "operation": op, "value": value}
        with ctx.lock:
            if name in state.variables:
                return {"var_name": name, "operation": op, "value": state.variables[name]}
            known = ", ".join(sorted(state.variables)) or "none"
        raise NodeError(
            f"variable {name!r} is not set (set so far: {known}); a node that sets it must run "
            "first: draw an edge from that node to this one, or define it with a context node"
        )


class CounterKind(NodeKind):
    """A run-wide counter (``data.counter_name``, default ``"default"``): its value after the op.

    ``increment`` / ``decrement`` by ``data.amount`` (default 1), ``reset`` to 0, ``get``.
    """

    fields = ("counter_op", "counter_name", "amount")
    _ops = ("increment", "decrement", "reset", "get")

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = choice(params, "counter_op", self._ops)
        if not is_number(params.get("amount", 1)):
            out.append(f"data.amount must be a number, got {show(params.get('amount'))}")
        if not isinstance(params.get("counter_name", "default"), str):
            out.append(f"data.counter_name must be a string, got {show(params['counter_name'])}")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op, name = params["counter_op"], params.get("counter_name", "default")
        amount = params.get("amount", 1)
        counters = graph_state(ctx).counters
        with ctx.lock:
            value = counters.get(name, 0)
            if op == "increment":
                value += amount
            elif op == "decrement":
                value -= amount
            elif op == "reset":
                value = 0
            counters[name] = value
            return value


_ACCUMULATE: dict[str, tuple[Callable[[], Any], Callable[[Any, Any], Any]]] = {
    "sum": (lambda: 0, lambda total, v: total + v),
    "product": (lambda: 1, lambda total, v: total * v),
    "concat": (lambda: "", lambda total, v: checked_text(total + node_text(v))),
    "array": (list, lambda total, v: [*total, v]),
    "count": (lambda: 0, lambda total, v: total + 1),
}


class AccumulatorKind(NodeKind):
    """Adds the first input (or ``data.value``) to a run-wide accumulator; outputs its total.

    ``sum`` and ``product`` of numbers, ``concat`` of text, ``array`` (a list of the values),
    ``count`` (how many nodes added). The accumulator is ``data.accum_name``, by default the
    op's name, so all ``sum`` nodes without a name share one.
    """

    fields = ("accum_op", "accum_name", "value")
    templated = ("value",)

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = choice(params, "accum_op", tuple(_ACCUMULATE))
        if params.get("accum_op") not in (None, "count"):
            out += _needs_value(params, step, f"an accumulator {params['accum_op']!r}")
        if not isinstance(params.get("accum_name", ""), str):
            out.append(f"data.accum_name must be a string, got {show(params['accum_name'])}")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["accum_op"]
        name = params.get("accum_name") or op
        value = _value_or_first(params, inputs)
        if op in ("sum", "product") and not is_number(value):
            raise NodeError(f"accumulator {name!r} ({op}) needs numbers, got {show(value)}")
        start, add = _ACCUMULATE[op]
        accumulators = graph_state(ctx).accumulators
        with ctx.lock:
            kind, total = accumulators.get(name, (op, None))
            if kind != op:
                raise NodeError(
                    f"accumulator {name!r} is a {kind!r} accumulator, not {op!r}; "
                    "give this node its own data.accum_name"
                )
            total = add(start() if total is None else total, value)
            accumulators[name] = (op, total)  # a new value each time: never changed in place
        return total


class CacheKind(NodeKind):
    """A run-wide cache by ``data.cache_key``: ``set`` stores, ``get`` reads (None on a miss).

    ``set`` stores ``data.value`` (rendered), else the first input, and outputs it.
    """

    fields = ("cache_op", "cache_key", "value")
    templated = ("cache_key", "value")

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = choice(params, "cache_op", ("get", "set")) + nonempty_str(
            params, "cache_key", "user-{{ trigger.id }}"
        )
        if params.get("cache_op") == "set":
            out += _needs_value(params, step, "a cache set")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        key, cache = node_text(params["cache_key"]), graph_state(ctx).cache
        if params["cache_op"] == "set":
            value = _value_or_first(params, inputs)
            with ctx.lock:
                cache[key] = value
            return value
        with ctx.lock:
            return cache.get(key)


class _DefinitionKind(NodeKind):
    """A node defining a run-wide name when the run starts; its output is the value."""

    name_key = ""
    value_key = ""
    what = ""

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = nonempty_str(params, self.name_key, "api_base")
        if self.value_key not in params:
            out.append(f"a {self.what} node needs data.{self.value_key}, its value")
        elif has_template(params[self.value_key]):
            out.append(
                f"data.{self.value_key} cannot be a template: {self.what}s are set when the run "
                "starts, before any node runs; use a variable node (var_op 'set') instead"
            )
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        """Define the name now, at the run's start; the action only outputs the value."""
        value = step.params[self.value_key]
        state = graph_state(ctx)
        with ctx.lock:
            self.table(state)[step.params[self.name_key]] = value
        return super().action(step, ctx)

    def table(self, state: GraphState) -> dict[str, Any]:
        """Where the definitions of this kind live."""
        raise NotImplementedError

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return params[self.value_key]


class ContextKind(_DefinitionKind):
    """A context variable: ``{{ variable.NAME }}`` from the run's start (a set may change it)."""

    fields = ("context_name", "context_value")
    name_key, value_key, what = "context_name", "context_value", "context variable"

    def table(self, state: GraphState) -> dict[str, Any]:
        return state.variables


class ConstantKind(_DefinitionKind):
    """A constant: ``{{ const.NAME }}`` everywhere in the run."""

    fields = ("const_name", "const_value")
    name_key, value_key, what = "const_name", "const_value", "constant"

    def table(self, state: GraphState) -> dict[str, Any]:
        return state.constants


KINDS = {
    "variable": VariableKind(),
    "counter": CounterKind(),
    "accumulator": AccumulatorKind(),
    "cache": CacheKind(),
    "context": ContextKind(),
    "constant": ConstantKind(),
}
