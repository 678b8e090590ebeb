"""How the native reader checks values: every problem recorded at its line, none stops it.

``Checks`` holds the problems of one document and the value checks the native format's
fields share (a mapping, a duration, an integer, a choice...). A check returns the value it
accepts, or records a problem and returns ``MISSING``, so that a reader goes on and one run
shows the user everything to fix in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pardag.errors import Problem
from pardag.formats.document import Document
from pardag.settings_rules import one_of
from pardag.units import parse_duration

__all__ = ["MISSING", "Checks", "show", "suggest", "type_name"]

MISSING: Any = object()
"""What a check returns after recording a problem: there is no value to use."""


def show(value: Any) -> str:
    """``value`` as written in a message, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_name(value: Any) -> str:
    """``a mapping``, ``a list``, ...: what was given where something else was expected."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), show(value))


def suggest(word: str, options: Sequence[str]) -> str:
    """``; did you mean 'x'?`` with the option closest to ``word``, else the options."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; use one of {', '.join(options)}" if options else ""


class Checks:
    """The problems of one document, each at its line, and the checks that record them."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.bad_steps: set[str] = set()

    def bad(self, message: str, *key: str | int, step: str | None = None) -> Any:
        """Record a problem at ``key``; returns ``MISSING`` so callers can return it."""
        self.problems.append(self.doc.problem(message, *key, step=step))
        if step is not None:
            self.bad_steps.add(step)
        return MISSING

    def unknown(
        self,
        data: Mapping[str, Any],
        fields: Sequence[str],
        where: str,
        at: tuple[str, ...],
        step: str | None = None,
        hint: Callable[[str], str] | None = None,
    ) -> None:
        """A problem for each key of ``data`` that is not one of ``fields``."""
        for key in data:
            if key not in fields:
                extra = hint(key) if hint is not None else ""
                message = f"unknown field {key!r}{where}" + (extra or suggest(key, fields))
                self.bad(message, *at, key, step=step)

    def expect(
        self,
        ok: bool,
        value: Any,
        what: str,
        expected: str,
        *key: str | int,
        step: str | None = None,
    ) -> bool:
        if not ok:
            self.bad(f"{what!r} must be {expected}, got {show(value)}", *key, step=step)
        return ok

    def ruled(
        self,
        value: Any,
        what: str,
        expected: str | None,
        *key: str | int,
        step: str | None = None,
        options: Sequence[str] | None = None,
    ) -> Any:
        """``value`` if its rule accepted it (``expected`` None), else a problem saying what
        the rule expects; a misspelt one of ``options`` is told the closest."""
        if expected is None:
            return value
        if options is not None and isinstance(value, str):
            return self.bad(f"{what!r} is {value!r}{suggest(value, options)}", *key, step=step)
        return self.bad(f"{what!r} must be {expected}, got {show(value)}", *key, step=step)

    def mapping(self, value: Any, what: str, *key: str | int, step: str | None = None) -> bool:
        return self.expect(isinstance(value, dict), value, what, "a mapping", *key, step=step)

    def duration(self, value: Any, what: str, *key: str | int, step: str | None = None) -> Any:
        try:
            return parse_duration(value, what)
        except ValueError:
            expected = "a duration like '30s' or a number of seconds >= 0"
            return self.bad(f"{what!r} must be {expected}, got {show(value)}", *key, step=step)

    def integer(
        self, value: Any, what: str, low: int | None, *key: str | int, step: str | None = None
    ) -> Any:
        ok = type(value) is int and (low is None or value >= low)
        expected = "an integer" + (f" >= {low}" if low is not None else "")
        return value if self.expect(ok, value, what, expected, *key, step=step) else MISSING

    def number(self, value: Any, what: str, *key: str | int, step: str | None = None) -> Any:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (
            float(value) if self.expect(ok, value, what, "a number", *key, step=step) else MISSING
        )

    def choice(
        self,
        value: Any,
        what: str,
        options: Sequence[str],
        *key: str | int,
        step: str | None = None,
    ) -> Any:
        """``value`` if it is one of ``options``, by the rule every choice shares."""
        expected = one_of(value, options)
        return self.ruled(value, what, expected, *key, step=step, options=options)
