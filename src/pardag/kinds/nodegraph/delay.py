"""The ``delay_node`` kind: a delay node of a graph, which waits and says so in its output.

Kept apart from the ``delay`` kind (which passes its first input on unchanged) because node
graphs' engines output ``{"value": the first input or None, "duration": as written,
"delayed": true}``, and node templates read the graph's names (``variable``, ``const``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pardag.kinds.base import Action, RunContext
from pardag.kinds.nodegraph.base import bind_inputs, template_names
from pardag.kinds.nodegraph.data import first_input, node_text
from pardag.states import ExecutorName
from pardag.templates import is_template, render
from pardag.units import parse_duration

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = ["KINDS", "DelayNodeKind"]


class DelayNodeKind:
    """Sleeps for ``data.duration`` (async: it holds no thread), then reports the wait."""

    fields: tuple[str, ...] = ("duration",)
    item_templates = True  # mapped, ``duration`` may read ``{{ item }}``

    def problems(self, step: Step) -> list[str]:
        """The ``delay`` kind's checks of ``duration``; the executor must be async."""
        from pardag.kinds import KINDS  # the registry imports this module: look it up late

        out = KINDS["delay"].problems(step)
        if step.executor not in (None, ExecutorName.ASYNC):
            out.append(f"a delay node runs on the 'async' executor, not {step.executor!r}")
        return out

    def action(self, step: Step, ctx: RunContext) -> Action:
        duration = step.params["duration"]
        where = f"step {step.id!r} data.duration"

        async def wait(inputs: Mapping[str, Any]) -> Any:
            value = duration
            if is_template(duration):
                value = render(duration, template_names(inputs, ctx), where=where, text=node_text)
            try:
                seconds = parse_duration(value, where)
            except ValueError as exc:
                raise ValueError(f"{exc} (rendered from {duration!r})") from None
            await asyncio.sleep(seconds)
            return {"value": first_input(inputs), "duration": value, "delayed": True}

        return Action(wait, ExecutorName.ASYNC, bind_inputs)


KINDS = {"delay_node": DelayNodeKind()}
