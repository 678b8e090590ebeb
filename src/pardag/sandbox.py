"""The Jinja2 sandbox that templates and expressions run in, with pardag's guards.

Templates and expressions come from workflow files, so rendering them must not read attributes
it should not, nor use unbounded memory or time. Jinja2's sandbox refuses private and internal
attributes, and its immutable variant the methods that change a dict, list or set (``update``,
``append``, ``pop``...); :class:`Sandbox` adds the rest: ``a.b`` reads a mapping's key first,
the read-only views of :mod:`pardag.readonly` refuse those methods alike, and operators
(``*``, ``**``, ``%``, ``+``, ``~``), string methods, filters and functions that could build a
huge value refuse to, within :data:`MAX_LENGTH`, :data:`MAX_EXPONENT` and :data:`MAX_INT_BITS`;
text assembled from parts (a template's output, a macro's, ``join``) stops at
:data:`MAX_OUTPUT`; every value built (literals, operators, calls, filters) and every value
turned into text is weighed by what it writes out, shared items counted each time
(:func:`pardag.budget.weigh`). Every loop iteration, call, filter and test is charged to the
render's budget (:mod:`pardag.budget`, compiled in by :mod:`pardag.metering`), so a render
that loops too long stops itself, by its operation count or its step's or run's deadline.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import filters, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, modifies_known_mutable
from markupsafe import Markup

from pardag import budget
from pardag.arguments import operand, spread
from pardag.metering import (
    MeteredCodeGenerator,
    MeteredEscapeFormatter,
    MeteredFormatter,
    too_long,
)
from pardag.readonly import ReadOnlyList, ReadOnlyMapping, json_default, unwrap

__all__ = [
    "MAX_EXPONENT",
    "MAX_INDENT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "MAX_OUTPUT",
    "Sandbox",
    "read_only_problem",
    "writable",
]

MAX_LENGTH = 1_000_000
"""Longest string or list an operator, method or filter in a template or expression may build."""

MAX_OUTPUT = 10 * 1024 * 1024
"""Longest text assembled from parts: a template's output, a macro's or ``{% set %}`` block's,
``join``."""

MAX_INDENT = 100
"""Largest ``tojson(indent=...)``."""

MACRO_COST = 9
"""Operations a macro call costs beyond a call's one: its frame costs about ten loop turns."""

MAX_EXPONENT = 10_000
"""Largest exponent magnitude ``**`` accepts."""

MAX_INT_BITS = 100_000
"""Largest integer (in bits, about 30,000 decimal digits) ``*`` and ``**`` may build."""


def _too_long(length: int) -> SecurityError:
    return too_long(length, MAX_LENGTH)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset, range)


def _size(value: Any) -> int:
    """How much data ``value`` is, for charging: its length, or a count argument's value."""
    if isinstance(value, _SIZED) or type(value) in (ReadOnlyList, ReadOnlyMapping):
        return min(len(value), MAX_LENGTH)
    if isinstance(value, int) and not isinstance(value, bool):
        return min(abs(value), MAX_LENGTH)
    return 0


def _cost(args: tuple[Any, ...], kwargs: Mapping[str, Any], owner: Any = None) -> int:
    """Operations a call costs: one, plus one per ``budget.CHARGE_UNIT`` items it is given."""
    items = _size(owner) if owner is not None else 0
    for arg in args:
        items += _size(arg)
    if kwargs:
        for arg in kwargs.values():
            items += _size(arg)
    return 1 + items // budget.CHARGE_UNIT


def _charge_result(result: Any) -> Any:
    """``result`` of an operator, call or filter: charged by its length, and refused when it
    would write out too much (``[a] * 10`` is ten items, ten ``a`` written out)."""
    if isinstance(result, str | bytes | list | tuple):
        budget.build(len(result))
    return result if type(result) in _TEXT_TYPES else _built(result)


_TEXT_TYPES = frozenset({str, int, float, bool, type(None), Markup})
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _built(value: Any) -> Any:
    """``value``, refused when it would write out over ``budget.MAX_BUILT`` characters: a list
    that refers to another many times is as large as the text it becomes."""
    return budget.weighed(value, budget.MAX_BUILT) if isinstance(value, _CONTAINERS) else value


def writable(value: Any) -> Any:
    """``value``, refused before it becomes text over ``MAX_OUTPUT`` characters (``str()`` of
    a list that refers to another many times builds all of it in one call)."""
    return (
        value if type(value) in _TEXT_TYPES else budget.weighed(value, MAX_OUTPUT, budget.WRITTEN)
    )


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


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


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
    code_generator_class = MeteredCodeGenerator

    def __init__(self, **options: Any) -> None:
        """Jinja2's sandbox, with guarded filters and functions where Jinja2's could run away,
        and every filter and test charged to the render's budget."""
        super().__init__(**options)
        self.filters.update(_FILTERS)
        del self.globals["lipsum"]
        self.globals.update(_GLOBALS)
        self.tests.update({"None": self.tests["none"], "True": self.tests["true"]})
        self.tests["False"] = self.tests["false"]
        self.filters = {
            name: _metered(f, name in _TEXT_FILTERS) for name, f in self.filters.items()
        }
        self.tests = {name: _metered(f) for name, f in self.tests.items()}

    tick = staticmethod(budget.tick)
    """One loop iteration (compiled into every ``{% for %}`` body)."""

    @staticmethod
    def charged(value: Any) -> Any:
        """``value``, charged one operation (a loop's ``if``, per item)."""
        budget.tick()
        return value

    built = staticmethod(_built)
    """A list, tuple or dict literal (compiled in around each)."""

    @staticmethod
    def joined(parts: tuple[Any, ...]) -> str:
        """``a ~ b``: refused before it builds a string over ``MAX_LENGTH``."""
        texts = [str(writable(part)) for part in parts]
        length = sum(map(len, texts))
        if length > MAX_LENGTH:
            raise _too_long(length)
        budget.tick()
        budget.build(length)
        return "".join(texts)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """A template's output (or a macro's, a block's): stops past ``MAX_OUTPUT``."""
        texts, length = [], 0
        for text in parts:
            length += len(text)
            if length > MAX_OUTPUT:
                raise SecurityError(
                    f"the rendered text would be longer than {MAX_OUTPUT:,} characters; "
                    "write less, or produce large data in a step"
                )
            texts.append(text)
        budget.build(length)
        return "".join(texts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operation before it builds something huge (views count as their data)."""
        budget.tick()
        left, right = unwrap(left), unwrap(right)
        if operator == "**":
            _guard_power(left, right)
        elif operator == "*":
            _guard_multiply(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            raise SecurityError("'%' string formatting is not allowed; use ~ or format()")
        elif operator == "+" and _length(left) + _length(right) > MAX_LENGTH:
            raise _too_long(_length(left) + _length(right))
        return _charge_result(super().call_binop(context, operator, left, right))

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
        """``"...".format``, refusing format specs and results that would be huge."""
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        _guard_format_string(text)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            formatter = (
                MeteredEscapeFormatter(self, MAX_LENGTH, escape=text.escape)
                if isinstance(text, Markup)
                else MeteredFormatter(self, MAX_LENGTH)
            )
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``a[k]``; reading from an undefined name fails with that name."""
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls, charged to the budget, with string methods that could build a huge string
        (``center`` and friends, ``expandtabs``, ``replace``, ``join``, ``translate``) capped."""
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, Macro):  # its ``varargs`` and ``kwargs`` keep what it is given
            budget.tick(_cost(args, kwargs) + MACRO_COST)
            _built((args, kwargs))
        else:
            budget.tick(_cost(args, kwargs, owner))
        if isinstance(owner, str | bytes | bytearray):
            args = _guard_method(owner, getattr(__obj, "__name__", ""), args)
        return _charge_result(super().call(__context, __obj, *args, **kwargs))


_TEXT_FILTERS = frozenset(
    {
        *("string", "lower", "upper", "capitalize", "title", "trim", "striptags", "truncate"),
        *("wordwrap", "wordcount", "center", "indent", "replace", "escape", "e", "forceescape"),
        *("safe", "urlencode", "urlize", "pprint", "tojson", "xmlattr"),
    }
)
"""Filters that write their value (and arguments) as text (``join`` and ``format`` weigh
their items themselves)."""


def _metered(fn: Any, writes: bool = False) -> Callable[..., Any]:
    """A filter or test charged to the budget (Jinja2's ``pass_context`` marks kept); one that
    ``writes`` its arguments as text refuses those that would be too long written out."""

    @functools.wraps(fn)
    def metered(*args: Any, **kwargs: Any) -> Any:
        budget.tick(_cost(args, kwargs))
        if writes:
            for arg in args:
                writable(arg)
        return _charge_result(fn(*args, **kwargs))

    return metered


def _guard_method(text: Any, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a string method call that would build more than ``MAX_LENGTH``; the arguments
    to call it with (``join``'s items, read once)."""
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        if args[0] > MAX_LENGTH:
            raise _too_long(args[0])
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        _check(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * size)
    elif name == "replace" and len(args) >= 2:
        _guard_replace(text, args)
    elif name == "join" and len(args) == 1:
        items = list(args[0])
        _check(_written(items) + len(text) * max(len(items) - 1, 0), MAX_OUTPUT)
        return (items,)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_length(v) for v in args[0].values()), default=1)
        _check(len(text) * max(longest, 1))
    return args


def _written(items: list[Any]) -> int:
    """How long ``items`` at least are, written out one after another (``join``)."""
    return budget.weigh(items, MAX_OUTPUT + len(items) + 2) - len(items) - 2


def _check(length: int, limit: int = MAX_LENGTH) -> None:
    if length > limit:
        raise too_long(length, limit)


def _guard_replace(text: Any, args: tuple[Any, ...]) -> None:
    old, new = args[0], args[1]
    if isinstance(old, str | bytes) and isinstance(new, str | bytes):
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
    lines = str(text).count("\n") + 1
    _check(len(str(text)) + _width(width) * lines)
    return filters.do_indent(text, width, first, blank)


def _width(width: Any) -> int:
    return len(width) if isinstance(width, str) else width if isinstance(width, int) else 0


@pass_eval_context
def _replace(context: Any, text: str, old: str, new: str, count: int | None = None) -> str:
    _guard_replace(str(text), (old, new) if count is None else (old, new, count))
    return filters.do_replace(context, text, old, new, count)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)


def _format(text: str, *args: Any, **kwargs: Any) -> str:
    """``"%s-%05d"|format(a, b)``, refused when it could build more than ``MAX_LENGTH``."""
    source = str(text)
    specs = [m for m in _PERCENT_SPEC.finditer(source) if m[3] != "%"]
    if any("*" in (m[1], m[2]) for m in specs):
        raise SecurityError("'*' widths in format are not allowed; write the width")
    widest = max((int(n) for m in specs for n in m.groups()[:2] if n), default=0)
    if widest > MAX_LENGTH:
        raise _too_long(widest)
    values = [writable(value) for value in (*args, *kwargs.values())]
    longest = max((len(v) if isinstance(v, str) else len(str(v)) for v in values), default=0)
    _check(len(source) + len(specs) * (widest + longest))
    return filters.do_format(text, *args, **kwargs)


def _tojson(value: Any, indent: int | str | None = None) -> str:
    """``|tojson`` without Jinja's HTML escaping: these templates are not HTML."""
    if _width(indent) > MAX_INDENT:
        raise SecurityError(f"tojson indent {indent!r} is too large (limit {MAX_INDENT})")
    return json.dumps(value, indent=indent, default=json_default)


@pass_eval_context
def _join(context: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """``|join``, refused past ``MAX_OUTPUT`` characters before it builds them (with an
    ``attribute``, what it picks is weighed, not the whole items)."""
    items = list(value)
    if attribute is not None:
        items = list(map(filters.make_attrgetter(context.environment, attribute), items))
    _check(_written(items) + len(str(d)) * max(len(items) - 1, 0), MAX_OUTPUT)
    return str(filters.sync_do_join(context, items, d))


@pass_environment
def _sum_filter(env: Any, items: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if attribute is not None:
        items = map(filters.make_attrgetter(env, attribute), items)
    return _sum(items, start)


def _round_filter(value: Any, precision: int = 0, method: str = "common") -> Any:
    _check_digits(precision)
    return filters.do_round(value, precision, method)  # type: ignore[arg-type]


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    _check(linecount if isinstance(linecount, int) else 0)
    return filters.do_batch(value, linecount, fill_with)


def _slice(value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    _check(slices if isinstance(slices, int) else 0)
    return filters.sync_do_slice(list(value), slices, fill_with)


@pass_environment
def _wordwrap(env: Any, s: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
    """``|wordwrap``: a wrap string per line could multiply the text; refused past the limit."""
    text = str(s)
    wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    per_line = len(wrap) if isinstance(wrap, str) else len(env.newline_sequence)
    lines = len(text) // max(width, 1) if isinstance(width, int) else len(text)
    _check(len(text) + (lines + text.count("\n") + 1) * per_line)
    return filters.do_wordwrap(env, s, width, *args, **kwargs)


_FILTERS: dict[str, Callable[..., Any]] = {
    "tojson": _tojson,
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "format": _format,
    "join": _join,
    "sum": _sum_filter,
    "round": _round_filter,
    "batch": _batch,
    "slice": _slice,
    "wordwrap": _wordwrap,
    "spread": spread,
    "operand": operand,
}
"""Filters that replace Jinja2's: guarded against huge results (``tojson``: not HTML-escaped)."""


def _check_digits(ndigits: Any) -> None:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise SecurityError(f"ndigits {ndigits} is too large (limit {MAX_EXPONENT:,})")


def _round(number: Any, ndigits: int | None = None) -> Any:
    _check_digits(ndigits)
    return round(number) if ndigits is None else round(number, ndigits)


def _str(*args: Any, **kwargs: Any) -> str:
    """``str()``, refused before it writes out a value over ``MAX_OUTPUT`` characters."""
    return str(*map(writable, args), **kwargs)


def _sum(items: Any, start: Any = 0) -> Any:
    if isinstance(start, int | float):
        return sum(items, start)
    total = start
    for item in items:  # sequences: add one by one so the length guard applies
        if _length(total) + _length(item) > MAX_LENGTH:
            raise _too_long(_length(total) + _length(item))
        total = total + item
        budget.tick()
        budget.build(_length(total))  # each step copies: quadratic work, charged
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
    "str": _str,
    "bool": bool,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": sorted,
}
"""Functions (and the ``null`` alias) every template and expression can use."""
