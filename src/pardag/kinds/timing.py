"""The ``delay`` kind: wait, then pass the first input on (a pause inside a pipeline).

Params: ``duration``, seconds or a duration string (``"200ms"``, ``"5s"``, ``"2m"``), possibly
a template (``"{{ params.wait }}"``, rendered when the step starts). The wait is an
``asyncio.sleep``: it holds a concurrency slot (it counts as running) but no thread, and a
timeout or a cancelled run ends it at once. The output is the output of the first dependency
in ``depends_on`` order, or None for a step without dependencies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.states import ExecutorName
from pardag.templates import is_template, namespace, render, template_problems
from pardag.units import parse_duration

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["DelayKind"]


class DelayKind:
    """Sleeps for ``duration``; see the module docstring."""

    fields: tuple[str, ...] = ("duration",)
    templated: tuple[str, ...] = ("duration",)
    """The fields rendered as templates (validation checks what they read)."""
    template_names: tuple[str, ...] = ()
    """Names its templates read besides ``pardag.templates.TEMPLATE_NAMES``."""

    def problems(self, step: Step) -> list[str]:
        if "duration" not in step.params:
            return ["a delay step needs params duration, e.g. duration: '500ms' or 2 (seconds)"]
        duration = step.params["duration"]
        if is_template(duration):
            return template_problems(duration, "duration")
        try:
            parse_duration(duration, "duration")
        except ValueError as exc:
            return [str(exc)]
        return []

    def action(self, step: Step, ctx: RunContext) -> Action:
        duration = step.params["duration"]
        where = f"step {step.id!r} params.duration"
        first = step.depends_on[0] if step.depends_on else None

        async def wait(inputs: Mapping[str, Any]) -> Any:
            value = render(duration, namespace(inputs, ctx), where=where)
            try:
                seconds = parse_duration(value, where)
            except ValueError as exc:
                raise ValueError(f"{exc} (rendered from {duration!r})") from None
            await asyncio.sleep(seconds)
            return None if first is None else inputs.get(first)

        return Action(wait, ExecutorName.ASYNC, _bind_inputs)


def _bind_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (inputs,), {}


KINDS = {"delay": DelayKind()}
