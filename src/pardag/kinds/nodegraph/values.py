"""The value nodes: where a graph's values come from (a number, a text, the trigger's data)
and where an editor shows one (``visualization``). None of them reads run-wide state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import RunContext
from pardag.kinds.nodegraph.base import NodeKind
from pardag.kinds.nodegraph.data import (
    NodeError,
    first_input,
    has_template,
    is_number,
    node_text,
    show,
)
from pardag.triggerdata import trigger_of

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["KINDS", "NumberKind", "TextKind", "TriggerKind", "VisualizationKind"]


def _number(value: Any, what: str) -> float:
    """``value`` as a float: a number or a numeric string; NodeError otherwise."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise NodeError(f"{what} must be a number, got {show(value)}")


class NumberKind(NodeKind):
    """``data.value`` as a float (a number, a numeric string or a template giving one)."""

    fields = ("value",)
    templated = ("value",)
    item_templates = True

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        value = params.get("value")
        if has_template(value):
            return []
        try:
            _number(value, "data.value")
        except NodeError:
            got = "nothing" if "value" not in params else show(value)
            return [f"data.value must be a number such as 42 or 2.5, got {got}"]
        return []

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return _number(params["value"], "data.value")


class TextKind(NodeKind):
    """``data.text``, rendered, as text."""

    fields = ("text",)
    templated = ("text",)
    item_templates = True

    def check(self, params: Mapping[str, Any], step: Step) -> list[str]:
        if "text" not in params:
            return ['a text node needs data.text, e.g. "text": "Hello {{ trigger.name }}"']
        return []

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return node_text(params["text"])


class VisualizationKind(NodeKind):
    """``{"mode": data.mode, "value": the first input}``: what an editor shows."""

    fields = ("mode",)

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return {"mode": params.get("mode"), "value": first_input(inputs)}


class TriggerKind(NodeKind):
    """Starts a flow: its output is the run's trigger data (its params when it has none;
    ``pardag.triggerdata``)."""

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any], ctx: RunContext) -> Any:
        return dict(trigger_of(ctx.params))


KINDS = {
    "number": NumberKind(),
    "text": TextKind(),
    "visualization": VisualizationKind(),
    "trigger": TriggerKind(),
}
