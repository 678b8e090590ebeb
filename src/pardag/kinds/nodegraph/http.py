"""The ``http_node`` kind: an http node of a graph, sent by the ``http`` kind (async).

Kept apart from the other node kinds because it is not a ``NodeKind``: it wraps the ``http``
kind, rendering the node's templates (which read the graph's names) before that kind sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.kinds.nodegraph.base import bind_inputs, template_names
from pardag.kinds.nodegraph.data import node_text
from pardag.states import ExecutorName
from pardag.templates import is_template, render

if TYPE_CHECKING:
    from pardag.kinds import Kind
    from pardag.model import Step

__all__ = ["KINDS", "HttpNodeKind"]


class HttpNodeKind:
    """An http node: the ``http`` kind, with the node's templates rendered here first.

    Node templates read more names than the ``http`` kind's (``variable``, ``const``, inputs
    by id), so this kind renders them and hands each value to the ``http`` kind as the
    template ``{{ inputs.rendered[i] }}``, an expression that yields the value itself: text
    that came from the trigger or another node is never rendered a second time. A ``body``
    that is an object or a list is sent as JSON.
    """

    item_templates = True  # mapped (``data.forEach``), its instances' templates read the item

    @property
    def fields(self) -> tuple[str, ...]:
        """The ``http`` kind's fields."""
        return _http_kind().fields

    def problems(self, step: Step) -> list[str]:
        out = _http_kind().problems(_with_params(step, _http_params(step.params)))
        if step.executor not in (None, ExecutorName.ASYNC):
            out.append(f"an http node runs on the 'async' executor, not {step.executor!r}")
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        slots: list[tuple[str, Any]] = []  # (where, template), in the order they are rendered
        params = _slotted(_http_params(step.params), f"step {step.id!r} data", slots)
        inner = _http_kind().action(_with_params(step, params), ctx)

        async def call(inputs: Mapping[str, Any]) -> Any:
            names = template_names(inputs, ctx) if slots else {}
            rendered = [render(t, names, where=where, text=node_text) for where, t in slots]
            args, kwargs = inner.bind({"rendered": rendered}, ctx.params)
            return await inner.fn(*args, **kwargs)

        return Action(call, ExecutorName.ASYNC, bind_inputs)


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


KINDS = {"http_node": HttpNodeKind()}
