"""Reading and checking a node's data: the error, limit and messages every node kind shares.

One place for them so that every node says "must be ..., got VALUE (type)" the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pardag.errors import NodeError
from pardag.templates import is_template, to_text

__all__ = [
    "MAX_TEXT",
    "NodeError",
    "check_length",
    "checked_text",
    "choice",
    "first_input",
    "has_template",
    "is_number",
    "node_text",
    "nonempty_str",
    "show",
]

MAX_TEXT = 1_000_000
"""Longest text a ``repeat`` or ``concat`` may build, in characters."""


def first_input(inputs: Mapping[str, Any]) -> Any:
    """The first input (the first edge's source), or None without inputs."""
    return next(iter(inputs.values()), None)


_EXACT = 2**53
"""Floats below this size hold whole numbers exactly, so ``int()`` loses nothing."""


def node_text(value: Any) -> str:
    """``value`` as text, as node-graph engines print it: a whole float without ``.0``.

    Number nodes and operations output floats, so ``{{ total }}`` of 42 reads ``42`` (as in
    the engines whose files these are), not ``42.0``; ``42.5`` stays ``42.5``. Anything else
    is :func:`pardag.templates.to_text`.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return str(int(value))
    return to_text(value)


def show(value: Any) -> str:
    """``value`` as messages quote it: its repr, cut to 60 characters, and its type."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (``True`` is no amount)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def nonempty_str(params: Mapping[str, Any], key: str, example: str) -> list[str]:
    """The message for ``data.KEY`` unless it is a non-empty string, naming ``example``."""
    value = params.get(key)
    if isinstance(value, str) and value:
        return []
    got = "nothing" if key not in params else show(value)
    return [f"data.{key} must be a non-empty string such as {example!r}, got {got}"]


def choice(params: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> list[str]:
    """The message for ``data.KEY`` unless it is one of ``choices``, listing them."""
    if params.get(key) in choices:
        return []
    got = "nothing" if key not in params else repr(params.get(key))
    return [f"data.{key} must be one of {', '.join(choices)}; got {got}"]


def checked_text(text: str) -> str:
    """``text``, once it is known to be no longer than ``MAX_TEXT``."""
    check_length(len(text))
    return text


def check_length(length: int) -> None:
    """Refuse text longer than ``MAX_TEXT``, before or after building it."""
    if length > MAX_TEXT:
        raise NodeError(f"the text would be {length:,} characters long (limit {MAX_TEXT:,})")


def has_template(value: Any) -> bool:
    """Whether ``value``, or any value inside it, is a template rendered per attempt."""
    if isinstance(value, Mapping):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_template(v) for v in value)
    return is_template(value)
