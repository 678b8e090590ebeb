"""Template values that become a command's arguments: one placeholder, one argument.

A step's argv (``command: [find, ., -name, "{{ params.pattern }}"]``, ``args:``, task-tree
``cli_command`` args) is rendered item by item. A value that is a list used to add each of
its items, so a run param ``pattern=["x", "-exec", "touch", "X", ";"]`` turned one argument
into an ``-exec``. Now a placeholder gives exactly one argument (a list is written as JSON),
unless the author asks for the items with ``| spread``. And a value that starts with ``-``
is read by most programs as an option even when it is one argument (``git log {{ rev }}``
with ``rev=--output=FILE``): ``| operand`` refuses such a value, for arguments that must not
be options.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import SecurityError

from pardag.readonly import ReadOnlyList, thaw

__all__ = ["Spread", "operand", "spread"]


class Spread(list[Any]):
    """A list the author asked to spread into several arguments (``| spread``)."""


def spread(value: Any) -> Spread:
    """The ``spread`` filter: each item of a list becomes an argument of its own."""
    if not isinstance(value, list | tuple | ReadOnlyList):
        raise SecurityError(
            f"spread takes a list (each item becomes one argument), got {type(value).__name__}"
        )
    return Spread(thaw(list(value)))


def operand(value: Any) -> Any:
    """The ``operand`` filter: ``value`` as it is, refused when its text starts with ``-``
    (a program would read it as an option, such as ``--output=FILE``)."""
    text = value if isinstance(value, str) else str(value)
    if text.startswith("-"):
        raise SecurityError(
            f"the value {text[:60]!r} starts with '-', so the command would read it as an "
            "option; | operand refuses it (if the command takes '--' to end its options, put "
            "'--' before it and drop | operand)"
        )
    return value
