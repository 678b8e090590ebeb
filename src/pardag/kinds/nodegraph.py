"""The node-graph kinds: what the nodes of visual-editor graphs do (see ``formats/nodegraph``).

Each node becomes a step whose ``params`` are the node's ``data``; its inputs are its source
nodes' outputs, in edge order ("the first input" is the output of the first edge's source).
These kinds are microseconds of work, so they run on the ``inline`` executor unless the step
names ``threads``; ``http`` and ``delay`` nodes are async (kinds ``http_node`` and ``delay``).

Run-wide state. Variables, constants, counters, accumulators and the cache live in the run's
``RunContext`` (one ``GraphState`` per run, never shared between runs) and change only under
``ctx.lock``, so counters and accumulators stay exact when nodes run in parallel on threads.
Constants (``constant`` nodes) and context variables (``context`` nodes) are defined when the
run starts, before any node runs, so every node can read them whatever the edges say; a
``variable`` node's ``set`` happens when that node runs, so a ``get`` elsewhere sees it only if
an edge orders the two (a ``get`` of a variable that is not set fails, naming it).

Templates. String fields that hold text (``text``, ``value``, ``cache_key``, the ``http``
fields) are rendered per attempt by :func:`pardag.templates.render` with the usual names
(``inputs``, ``steps.ID.output``, ``params``, ``trigger``, ``env``), each input by its source's
id (as conditions read them), ``variable`` (the run's variables) and ``const`` (its
constants): ``"Hello {{ variable.user }}, total {{ sum }}"``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pardag.expressions import Expression, compile_expression, expression_names
from pardag.kinds.base import Action, RunContext
from pardag.templates import is_template, namespace, render, template_problems, to_text

if TYPE_CHECKING:
    from pardag.kinds import Kind
    from pardag.model import Step

__all__ = [
    "KINDS",
    "MAX_TEXT",
    "GraphState",
    "HttpNodeKind",
    "NodeError",
    "NodeKind",
    "condition_function",
    "graph_state",
    "template_names",
]

MAX_TEXT = 1_000_000
"""Longest text a ``repeat`` or ``concat`` may build, in characters."""

_EXECUTORS = ("inline", "threads")


class NodeError(Exception):
    """A node could not compute its output from its inputs and data; the message says why."""


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
    """The names node templates read: each input by its source's id, as in conditions, then
    ``pardag.templates.namespace`` (which wins on a clash) with ``variable`` and ``const``."""
    state = graph_state(ctx)
    with ctx.lock:
        variables, constants = dict(state.variables), dict(state.constants)
    return {**inputs, **namespace(inputs, ctx, variable=variables, const=constants)}


# -- helpers ----------------------------------------------------------------------------------


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


def _first(inputs: Mapping[str, Any]) -> Any:
    """The first input (the first edge's source), or None without inputs."""
    return next(iter(inputs.values()), None)


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, what: str) -> float:
    """``value`` as a float: a number or a numeric string; NodeError otherwise."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise NodeError(f"{what} must be a number, got {_show(value)}")


def _nonempty_str(params: Mapping[str, Any], key: str, example: str) -> list[str]:
    value = params.get(key)
    if isinstance(value, str) and value:
        return []
    got = "nothing" if key not in params else _show(value)
    return [f"data.{key} must be a non-empty string such as {example!r}, got {got}"]


def _choice(params: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> list[str]:
    if params.get(key) in choices:
        return []
    got = "nothing" if key not in params else repr(params.get(key))
    return [f"data.{key} must be one of {', '.join(choices)}; got {got}"]


def _checked_text(text: str) -> str:
    _check_length(len(text))
    return text


def _check_length(length: int) -> None:
    """Refuse text longer than ``MAX_TEXT``, before or after building it."""
    if length > MAX_TEXT:
        raise NodeError(f"the text would be {length:,} characters long (limit {MAX_TEXT:,})")


# -- the base of every node kind --------------------------------------------------------------


class NodeKind:
    """A node kind: ``compute(params, inputs, ctx)`` with its templated fields rendered.

    Subclasses set ``fields`` (the data keys they read), ``templated`` (those rendered per
    attempt), ``min_inputs`` (edges it needs, checked at validation) and override ``check``
    (validation messages) and ``compute``.
    """

    fields: tuple[str, ...] = ()
    templated: tuple[str, ...] = ()
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
        params, executor = step.params, step.executor or "inline"
        rendered = [k for k in self.templated if k in params and _has_template(params[k])]
        if not rendered and not self.min_inputs:  # most nodes: nothing to check or render
            return Action(functools.partial(self.compute, params, ctx=ctx), executor, _bind_inputs)
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
                    values[key] = render(params[key], names, where=f"{where}.{key}")
            return compute(values, inputs, ctx)

        return Action(run, executor, _bind_inputs)

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        """The node's output from its (rendered) data and its inputs by source id."""
        raise NotImplementedError


def _has_template(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_template(v) for v in value)
    return is_template(value)


# -- values -----------------------------------------------------------------------------------


class NumberKind(NodeKind):
    """``data.value`` as a float (a number, a numeric string or a template giving one)."""

    fields = ("value",)
    templated = ("value",)

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        value = params.get("value")
        if _has_template(value):
            return []
        try:
            _number(value, "data.value")
        except NodeError:
            got = "nothing" if "value" not in params else _show(value)
            return [f"data.value must be a number such as 42 or 2.5, got {got}"]
        return []

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return _number(params["value"], "data.value")


class TextKind(NodeKind):
    """``data.text``, rendered, as text."""

    fields = ("text",)
    templated = ("text",)

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        if "text" not in params:
            return ['a text node needs data.text, e.g. "text": "Hello {{ trigger.name }}"']
        return []

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return to_text(params["text"])


class VisualizationKind(NodeKind):
    """``{"mode": data.mode, "value": the first input}``: what an editor shows."""

    fields = ("mode",)

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return {"mode": params.get("mode"), "value": _first(inputs)}


class TriggerKind(NodeKind):
    """Starts a flow: its output is the run's trigger data (its params)."""

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return dict(ctx.params)


# -- arithmetic and text ----------------------------------------------------------------------

_OPERATIONS: dict[str, Callable[[float, float], float]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
}


class OperationKind(NodeKind):
    """``data.op`` (add, subtract, multiply, divide) on the first two inputs, as a float."""

    fields = ("op",)
    min_inputs = 2
    noun = "operation"

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        return _choice(params, "op", tuple(_OPERATIONS))

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["op"]
        operands = []
        for n, (source, value) in enumerate(list(inputs.items())[:2], start=1):
            if not _is_number(value):
                raise NodeError(
                    f"operation {op!r} needs numbers; input {n} (from {source!r}) is {_show(value)}"
                )
            operands.append(float(value))
        a, b = operands
        if op == "divide" and b == 0:
            raise NodeError(f"division by zero ({a:g} / {b:g})")
        return _OPERATIONS[op](a, b)


def _camel(text: str) -> str:
    words = [w for w in re.split(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])", text) if w]
    return "".join(
        w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words)
    )


def _title(text: str) -> str:
    return re.sub(r"\S+", lambda m: m[0][:1].upper() + m[0][1:].lower(), text)


_TEXT_OPERATIONS: dict[str, Callable[[str], str]] = {
    "uppercase": str.upper,
    "lowercase": str.lower,
    "titlecase": _title,
    "camelcase": _camel,
    "inversecase": str.swapcase,
}


class TextOperationKind(NodeKind):
    """``data.text_op`` on the first input; ``concat`` joins all inputs, ``repeat`` repeats."""

    fields = ("text_op", "separator", "repeat_n")
    templated = ("separator",)
    min_inputs = 1
    noun = "text operation"
    _ops = (*_TEXT_OPERATIONS, "concat", "repeat")

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = _choice(params, "text_op", self._ops)
        if params.get("text_op") == "repeat":
            n = params.get("repeat_n")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                got = "nothing" if "repeat_n" not in params else _show(n)
                out.append(f"repeat needs data.repeat_n, a whole number >= 0, got {got}")
        separator = params.get("separator", "")
        if not isinstance(separator, str):
            out.append(f'data.separator must be a string such as ", ", got {_show(separator)}')
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["text_op"]
        if op == "concat":
            separator = to_text(params.get("separator", ""))
            return _checked_text(separator.join(to_text(v) for v in inputs.values()))
        text = to_text(_first(inputs))
        if op == "repeat":
            count = params["repeat_n"]
            _check_length(len(text) * count)
            return text * count
        return _TEXT_OPERATIONS[op](text)


class ExtractKind(NodeKind):
    """``data.field`` (a value) or ``data.fields`` (a mapping) from the first input.

    A field is a key, or a dotted path through mappings and lists (``body.items.0.id``).
    """

    fields = ("field", "fields")
    min_inputs = 1
    noun = "extract"

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        if "fields" in params:
            wanted = params["fields"]
            if isinstance(wanted, list) and wanted and all(isinstance(f, str) for f in wanted):
                return []
            example = '["id", "name"]'
            return [
                f"data.fields must be a list of field names such as {example}, got {_show(wanted)}"
            ]
        return _nonempty_str(params, "field", "user.name")

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        source = _first(inputs)
        if "fields" in params:
            return {name: _lookup(source, name) for name in params["fields"]}
        return _lookup(source, params["field"])


def _lookup(value: Any, path: str) -> Any:
    """``value[path]``, else the dotted path followed key by key (list items by index)."""
    if isinstance(value, Mapping) and path in value:
        return value[path]
    current = value
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            raise NodeError(f"field {path!r} is not in the input: {_missing(current, part)}")
    return current


def _missing(value: Any, part: str) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k) for k in value)[:20]) or "none"
        return f"no key {part!r} (keys: {keys})"
    if isinstance(value, list):
        return f"no index {part!r} in a list of {len(value)}"
    return f"{part!r} cannot be read from {_show(value)}"


# -- run-wide state -------------------------------------------------------------------------


def _value_or_first(params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
    return params["value"] if "value" in params else _first(inputs)


def _needs_value(params: Mapping[str, Any], step: Step, what: str) -> list[str]:
    if "value" in params or step.depends_on:
        return []
    return [f"{what} needs a value: give data.value or draw an edge into it from a node"]


class VariableKind(NodeKind):
    """A run-wide variable: ``set`` stores a value and outputs it, ``get`` outputs it.

    ``set`` stores ``data.value`` (rendered), else the first input.
    """

    fields = ("var_name", "var_op", "value")
    templated = ("value",)

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        out = _nonempty_str(params, "var_name", "total") + _choice(params, "var_op", ("set", "get"))
        if params.get("var_op") == "set":
            out += _needs_value(params, step, "a variable set")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        name, state = params["var_name"], graph_state(ctx)
        if params["var_op"] == "set":
            value = _value_or_first(params, inputs)
            with ctx.lock:
                state.variables[name] = value
            return value
        with ctx.lock:
            if name in state.variables:
                return state.variables[name]
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
        out = _choice(params, "counter_op", self._ops)
        if not _is_number(params.get("amount", 1)):
            out.append(f"data.amount must be a number, got {_show(params.get('amount'))}")
        if not isinstance(params.get("counter_name", "default"), str):
            out.append(f"data.counter_name must be a string, got {_show(params['counter_name'])}")
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
    "concat": (lambda: "", lambda total, v: _checked_text(total + to_text(v))),
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
        out = _choice(params, "accum_op", tuple(_ACCUMULATE))
        if params.get("accum_op") not in (None, "count"):
            out += _needs_value(params, step, f"an accumulator {params['accum_op']!r}")
        if not isinstance(params.get("accum_name", ""), str):
            out.append(f"data.accum_name must be a string, got {_show(params['accum_name'])}")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["accum_op"]
        name = params.get("accum_name") or op
        value = _value_or_first(params, inputs)
        if op in ("sum", "product") and not _is_number(value):
            raise NodeError(f"accumulator {name!r} ({op}) needs numbers, got {_show(value)}")
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
        out = _choice(params, "cache_op", ("get", "set")) + _nonempty_str(
            params, "cache_key", "user-{{ trigger.id }}"
        )
        if params.get("cache_op") == "set":
            out += _needs_value(params, step, "a cache set")
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        key, cache = to_text(params["cache_key"]), graph_state(ctx).cache
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
        out = _nonempty_str(params, self.name_key, "api_base")
        if self.value_key not in params:
            out.append(f"a {self.what} node needs data.{self.value_key}, its value")
        elif _has_template(params[self.value_key]):
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


# -- http -------------------------------------------------------------------------------------


class HttpNodeKind:
    """An http node: the ``http`` kind, with the node's templates rendered here first.

    Node templates read more names than the ``http`` kind's (``variable``, ``const``, inputs
    by id), so this kind renders them and hands each value to the ``http`` kind as the
    template ``{{ inputs.rendered[i] }}``, an expression that yields the value itself: text
    that came from the trigger or another node is never rendered a second time. A ``body``
    that is an object or a list is sent as JSON.
    """

    @property
    def fields(self) -> tuple[str, ...]:
        """The ``http`` kind's fields."""
        return _http_kind().fields

    def problems(self, step: Step) -> list[str]:
        out = _http_kind().problems(_with_params(step, _http_params(step.params)))
        if step.executor not in (None, "async"):
            out.append(f"an http node runs on the 'async' executor, not {step.executor!r}")
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        slots: list[tuple[str, Any]] = []  # (where, template), in the order they are rendered
        params = _slotted(_http_params(step.params), f"step {step.id!r} data", slots)
        inner = _http_kind().action(_with_params(step, params), ctx)

        async def call(inputs: Mapping[str, Any]) -> Any:
            names = template_names(inputs, ctx) if slots else {}
            rendered = [render(template, names, where=where) for where, template in slots]
            args, kwargs = inner.bind({"rendered": rendered}, ctx.params)
            return await inner.fn(*args, **kwargs)

        return Action(call, "async", _bind_inputs)


def _http_kind() -> Kind:
    from pardag.kinds import KINDS  # the registry imports this module: look it up late

    return KINDS["http"]


def _http_params(data: Mapping[str, Any]) -> dict[str, Any]:
    """The node's data the ``http`` kind reads; an object or list ``body`` becomes ``json``."""
    params = {k: v for k, v in data.items() if k in _http_kind().fields}
    body = params.get("body")
    if isinstance(body, dict | list) and "json" not in params:
        params["json"] = params.pop("body")
    return params


def _with_params(step: Step, params: dict[str, Any]) -> Step:
    return replace(step, params=params)


def _slotted(value: Any, where: str, slots: list[tuple[str, Any]]) -> Any:
    """``value`` with each template string replaced by the expression of its slot."""
    if isinstance(value, Mapping):
        return {k: _slotted(v, f"{where}.{k}", slots) for k, v in value.items()}
    if isinstance(value, list):
        return [_slotted(v, f"{where}[{i}]", slots) for i, v in enumerate(value)]
    if not is_template(value):
        return value
    slots.append((where, value))
    return f"{{{{ inputs.rendered[{len(slots) - 1}] }}}}"


# -- conditions -------------------------------------------------------------------------------


def condition_function(source: str, where: str) -> Callable[..., bool]:
    """The function of a condition node: its expression's truth over the inputs and trigger.

    The expression (one ``{{ }}`` around it is allowed) reads each input by its source's id,
    ``inputs``, ``steps.ID.output``, ``params`` and ``trigger`` (the run's trigger data).
    Raises ArgumentError (naming ``where``) when it does not compile.
    """
    text = source.strip() if isinstance(source, str) else source
    if isinstance(text, str) and text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    expression: Expression = compile_expression(text, where=where)

    def condition(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        return bool(expression.evaluate(expression_names(inputs, params)))

    return condition


KINDS = {
    "number": NumberKind(),
    "text": TextKind(),
    "visualization": VisualizationKind(),
    "trigger": TriggerKind(),
    "operation": OperationKind(),
    "text_operation": TextOperationKind(),
    "extract": ExtractKind(),
    "variable": VariableKind(),
    "counter": CounterKind(),
    "accumulator": AccumulatorKind(),
    "cache": CacheKind(),
    "context": ContextKind(),
    "constant": ConstantKind(),
    "http_node": HttpNodeKind(),
}
