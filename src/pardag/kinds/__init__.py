"""What a step does. Each kind turns a ``Step`` into an ``Action`` the runner can call.

A kind checks its step's parameters at validation time (``problems``) and builds the call at
run start (``action``), so nothing about a kind is decided inside the scheduler's hot loop.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pardag.errors import MissingRuntime
from pardag.kinds.base import Action, Binder, RunContext

if TYPE_CHECKING:
    from pardag.model import Step

__all__ = [
    "KINDS",
    "Action",
    "Binder",
    "Kind",
    "RunContext",
    "action_for",
    "kind_problems",
    "unknown_kind",
]


class Kind(Protocol):
    """A step kind: validates its steps and builds their actions.

    ``fields`` names the parameters the kind reads from ``step.params``; file readers use it
    to tell a kind's parameters from misspelt step fields.
    """

    fields: tuple[str, ...]

    def problems(self, step: Step) -> list[str]:
        """What is wrong with this step's fields for this kind, as messages with the fix."""
        ...

    def action(self, step: Step, ctx: RunContext) -> Action:
        """The call that performs one attempt of the step (built once per run)."""
        ...


_MODULES = (
    "python",
    "control",
    "shell",
    "shellflow",
    "nodegraph",
    "timing",
    "http",
    "approval",
    "lua",
    "javascript",
    "wasm",
)
"""Modules under ``pardag.kinds`` whose ``KINDS`` mapping joins the registry."""


def _registry() -> dict[str, Kind]:
    import importlib

    out: dict[str, Kind] = {}
    for name in _MODULES:
        out.update(importlib.import_module(f"pardag.kinds.{name}").KINDS)
    return out


KINDS: dict[str, Kind] = _registry()
"""Every kind by name; built at import so that validating a first workflow pays no import."""


def _kinds() -> dict[str, Kind]:
    return KINDS


NEAR_MISSES = {
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "command": "shell",
    "cmd": "shell",
    "script": "shell",
    "py": "python",
    "python3": "python",
    "function": "python",
    "http_request": "http",
    "request": "http",
    "https": "http",
    "rest": "http",
    "api": "http",
    "webhook": "http",
    "if": "condition",
    "switch": "condition",
    "branch": "condition",
    "sleep": "delay",
    "wait": "delay",
    "join": "merge",
    "approve": "approval",
    "manual": "approval",
}
"""Names users reach for that are not kinds, and the kind they mean."""


def unknown_kind(kind: object) -> str:
    """``kind 'bash' is unknown; did you mean 'shell'?``: a known near miss, else the closest
    kind by spelling, else the list of kinds."""
    known = sorted(_kinds())
    meant = NEAR_MISSES.get(str(kind).lower())
    if meant is None:
        close = difflib.get_close_matches(str(kind).lower(), known, n=1, cutoff=0.6)
        meant = close[0] if close else None
    if meant is not None:
        return f"kind {kind!r} is unknown; did you mean {meant!r}?"
    return f"kind {kind!r} is unknown; use one of {', '.join(known)}"


def kind_problems(step: Step) -> list[str]:
    """Validation messages for ``step`` from its kind (an unknown kind is one)."""
    kind = _kinds().get(step.kind)
    if kind is None:
        return [unknown_kind(step.kind)]
    try:
        return kind.problems(step)
    except MissingRuntime as exc:  # the kind's language runtime is not installed
        return [str(exc)]


def action_for(step: Step, ctx: RunContext) -> Action:
    """The ``Action`` of a validated step, for the run ``ctx`` belongs to."""
    return _kinds()[step.kind].action(step, ctx)


Handle = Callable[[object], str]
