"""The operation nodes: each computes its output from its inputs alone (arithmetic on two
numbers, a text operation, fields extracted from a value); none reads run-wide state."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import RunContext
from pardag.kinds.nodegraph.base import NodeKind
from pardag.kinds.nodegraph.data import (
    NodeError,
    check_length,
    checked_text,
    choice,
    first_input,
    is_number,
    node_text,
    nonempty_str,
    show,
)

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["KINDS", "ExtractKind", "OperationKind", "TextOperationKind"]

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
        return choice(params, "op", tuple(_OPERATIONS))

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["op"]
        operands = []
        for n, (source, value) in enumerate(list(inputs.items())[:2], start=1):
            if not is_number(value):
                raise NodeError(
                    f"operation {op!r} needs numbers; input {n} (from {source!r}) is {show(value)}"
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
        out = choice(params, "text_op", self._ops)
        if params.get("text_op") == "repeat":
            n = params.get("repeat_n")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                got = "nothing" if "repeat_n" not in params else show(n)
                out.append(f"repeat needs data.repeat_n, a whole number >= 0, got {got}")
        separator = params.get("separator", "")
        if not isinstance(separator, str):
            out.append(f'data.separator must be a string such as ", ", got {show(separator)}')
        return out

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        op = params["text_op"]
        if op == "concat":
            separator = node_text(params.get("separator", ""))
            return checked_text(separator.join(node_text(v) for v in inputs.values()))
        text = node_text(first_input(inputs))
        if op == "repeat":
            count = params["repeat_n"]
            check_length(len(text) * count)
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
                f"data.fields must be a list of field names such as {example}, got {show(wanted)}"
            ]
        return nonempty_str(params, "field", "user.name")

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        source = first_input(inputs)
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
    return f"{part!r} cannot be read from {show(value)}"


KINDS = {
    "operation": OperationKind(),
    "text_operation": TextOperationKind(),
    "extract": ExtractKind(),
}
