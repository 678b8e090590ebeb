"""The Jinja2 sandbox that templates and expressions run in, with pardag's guards.

Templates and expressions come from workflow files, so rendering them must not read attributes
it should not, nor use unbounded memory or time. Jinja2's sandbox refuses private and internal
attributes, and its immutable variant the methods that change a dict, list or set (``update``,
``append``, ``pop``...); :class:`Sandbox` adds the rest: ``a.b`` reads a mapping's key first,
the read-only views of :mod:`pardag.readonly` refuse those methods alike, and operators
(``*``, ``**``, ``%``, ``+``), string methods, filters and functions that could build a huge
value refuse to, within :data:`MAX_LENGTH`, :data:`MAX_EXPONENT` and :data:`MAX_INT_BITS`.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import filters, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, modifies_known_mutable

from pardag.arguments import operand, spread
from pardag.readonly import ReadOnlyList, ReadOnlyMapping, json_default, unwrap

__all__ = ["MAX_EXPONENT", "MAX_INT_BITS", "MAX_LENGTH", "Sandbox", "read_only_problem"]

MAX_LENGTH = 1_000_000
"""Longest string or list an operator in a template or expression may build."""

MAX_EXPONENT = 10_000
"""Largest exponent magnitude ``**`` accepts."""

MAX_INT_BITS = 100_000
"""Largest integer (in bits, about 30,000 decimal digits) ``*`` and ``**`` may build."""


def _too_long(length: int) -> SecurityError:
    return SecurityError(f"the result would be too long: {length:,} items (limit {MAX_LENGTH:,})")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _guard_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int | float) and abs(exponent) > MAX_EXPONENT:
        raise SecurityError(f"the exponent {exponent!r} is too large (limit {MAX_EXPONENT:,})")
    positive = exponent if isinstance(exponent, int) and exponent > 0 else 0
    if _bits(base) * positive > MAX_INT_BITS:
        raise SecurityError(f"the result would be too large: more than {MAX_INT_BITS:,} bits")


def _guard_multiply(left: Any, right: Any) -> None:
    for sequence, count in ((left, right), (right, left)):
        length = _length(sequence) * (count if isinstance(count, int) else 0)
        if length > MAX_LENGTH:
            raise _too_long(length)
    if _bits(left) + _bits(right) > MAX_INT_BITS:
        raise SecurityError(f"the result would be too large: more than {MAX_INT_BITS:,} bits")


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


_MUTATING_DUNDERS = frozenset(
    {"__setitem__", "__delitem__", "__iadd__", "__imul__", "__ior__", "__iand__", "__ixor__"}
)


def read_only_problem(obj: Any, attribute: Any) -> str | None:
    """Why ``obj.attribute`` is refused when it would change ``obj`` (a dict, list, set, or a
    read-only view of one), else None."""
    target = unwrap(obj)
    if not isinstance(attribute, str):
        return None
    dunder = attribute in _MUTATING_DUNDERS and hasattr(target, attribute)
    if not dunder and not modifies_known_mutable(target, attribute):
        return None
    return (
        f"{attribute!r} would change the {type(target).__name__}: templates and expressions "
        "only read (params, env, step outputs and variables are read-only); build a new "
        "value instead, e.g. dict(a, key=value) or a + [item]"
    )


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with pardag's rules: mapping keys first, guarded operators.

    Shared by templates and ``when``/condition expressions so both read names alike.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        """Jinja2's sandbox, with guarded filters and functions where Jinja2's could run away."""
        super().__init__(**options)
        self.filters.update(_FILTERS)
        del self.globals["lipsum"]
        self.globals.update(_GLOBALS)
        self.tests.update({"None": self.tests["none"], "True": self.tests["true"]})
        self.tests["False"] = self.tests["false"]

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operation before it builds something huge (views count as their data)."""
        left, right = unwrap(left), unwrap(right)
        if operator == "**":
            _guard_power(left, right)
        elif operator == "*":
            _guard_multiply(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            raise SecurityError("'%' string formatting is not allowed; use ~ or format()")
        elif operator == "+" and _length(left) + _length(right) > MAX_LENGTH:
            raise _too_long(_length(left) + _length(right))
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``a.b`` on a mapping is ``a["b"]``, even where a dict method has that name."""
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if type(obj) is ReadOnlyMapping or isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                if read_only_problem(obj, attribute):
                    return self.unsafe_undefined(obj, attribute)
                if attribute.startswith("_"):
                    return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, ReadOnlyMapping | ReadOnlyList) and read_only_problem(obj, attribute):
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """The refusal of an attribute, in pardag's words when it would change a value."""
        problem = read_only_problem(obj, attribute)
        if problem is None:
            return super().unsafe_undefined(obj, attribute)
        return self.undefined(problem, name=attribute, obj=obj, exc=SecurityError)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``"...".format``, refusing format specs that would build huge strings."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _guard_format_string(value.__self__)
        return wrapped

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``a[k]``; reading from an undefined name fails with that name."""
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls, with the width of ``str.center`` and friends and ``str.replace`` capped."""
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _WIDTH_METHODS and args and isinstance(args[0], int):
                if args[0] > MAX_LENGTH:
                    raise _too_long(args[0])
            elif name == "replace" and len(args) >= 2:
                _guard_replace(owner, args)
        return super().call(__context, __obj, *args, **kwargs)


def _guard_replace(text: str, args: tuple[Any, ...]) -> None:
    old, new = args[0], args[1]
    if isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        length = len(text) + count * (len(new) - len(old))
        if length > MAX_LENGTH:
            raise _too_long(length)


def _guard_format_string(text: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(text):
        if spec and "{" in spec:
            raise SecurityError("nested fields in a format spec are not allowed; use {:>10}")
        _guard_widths(spec or "")


def _guard_widths(spec: str) -> None:
    for number in re.findall(r"\d+", spec):
        if int(number) > MAX_LENGTH:
            raise _too_long(int(number))


def _center(value: Any, width: int = 80) -> str:
    if isinstance(width, int) and width > MAX_LENGTH:
        raise _too_long(width)
    return str(filters.do_center(value, width))


def _indent(text: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    if isinstance(width, int) and width * (str(text).count("\n") + 1) > MAX_LENGTH:
        raise _too_long(width * (str(text).count("\n") + 1))
    return filters.do_indent(text, width, first, blank)


@pass_eval_context
def _replace(context: Any, text: str, old: str, new: str, count: int | None = None) -> str:
    _guard_replace(str(text), (old, new) if count is None else (old, new, count))
    return filters.do_replace(context, text, old, new, count)


def _format(text: str, *args: Any, **kwargs: Any) -> str:
    if "*" in re.sub(r"%%", "", str(text)):
        raise SecurityError("'*' widths in format are not allowed; write the width")
    for spec in re.findall(r"%[^a-zA-Z%]*", str(text)):
        _guard_widths(spec)
    return filters.do_format(text, *args, **kwargs)


def _tojson(value: Any, indent: int | None = None) -> str:
    """``|tojson`` without Jinja's HTML escaping: these templates are not HTML."""
    return json.dumps(value, indent=indent, default=json_default)


_FILTERS: dict[str, Callable[..., Any]] = {
    "tojson": _tojson,
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "format": _format,
    "spread": spread,
    "operand": operand,
}
"""Filters that replace Jinja2's: guarded against huge results (``tojson``: not HTML-escaped)."""


def _round(number: Any, ndigits: int | None = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise SecurityError(f"ndigits {ndigits} is too large (limit {MAX_EXPONENT:,})")
    return round(number) if ndigits is None else round(number, ndigits)


def _sum(items: Any, start: Any = 0) -> Any:
    if isinstance(start, int | float):
        return sum(items, start)
    total = start
    for item in items:  # sequences: add one by one so the length guard applies
        if _length(total) + _length(item) > MAX_LENGTH:
            raise _too_long(_length(total) + _length(item))
        total = total + item
    return total


_GLOBALS: dict[str, Any] = {
    "null": None,
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": _round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": sorted,
}
"""Functions (and the ``null`` alias) every template and expression can use."""
