"""The shapes shared by all kinds: an ``Action`` and how inputs bind to a call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Action", "Binder", "no_inputs"]

Binder = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
"""Turns (inputs by dependency id, run params) into (args, kwargs) for the step's function."""

_EMPTY: tuple[Any, ...] = ()


def no_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The binder of a function that takes nothing."""
    return _EMPTY, {}


@dataclass(slots=True)
class Action:
    """One attempt of a step: ``fn(*args, **kwargs)`` on ``executor``.

    ``handle`` maps the output of a condition step to the branch handle it chose; None for
    other kinds.
    """

    fn: Callable[..., Any]
    executor: str
    bind: Binder
    handle: Callable[[Any], str] | None = None
