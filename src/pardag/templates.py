"""Templates in step params: ``"https://api/{{ steps.fetch.output.id }}"``, rendered per run.

A workflow file writes values that depend on the run: an upstream step's output, the run's
params, an environment variable. Such strings are Jinja2 templates, rendered in Jinja2's
sandbox when the step starts, with :func:`namespace` as the names they can read:

* ``inputs``: the dependencies' outputs by id; ``steps.ID.output``: the same, one by one;
* ``params`` and ``trigger``: the run's params (its trigger data);
* ``env``: the process environment.

Rules worth knowing:

* A string that is exactly one ``{{ expr }}`` keeps the value's type (a number stays a number,
  a mapping a mapping); anything else renders to text.
* Substituted values render as text like this: strings as they are, numbers with ``str()``,
  and ``true``/``false``/``null``, lists and mappings as JSON.
* Undefined names and keys are errors (``StrictUndefined``), never empty strings: the message
  names the place, the template and the names (or keys) that are available.
* ``quote`` (``shlex.quote`` for shell commands) is applied to every substituted value, so a
  value never reaches a shell unquoted; the template's own text is left as written. With a
  ``quote``, a lone ``{{ expr }}`` renders to quoted text too.
* Only strings containing ``{{`` or ``{%`` are templates; comments are ``{## ... ##}`` (not
  Jinja's usual ``{# #}``, which would clash with the shell's ``${#var}``).
* ``a.b`` reads the key ``b`` of a mapping first (so ``output.items`` is the key, not the
  dict method); the sandbox refuses private attributes and guards ``*``, ``**``, ``%`` and
  ``range`` against building huge values (see :mod:`pardag.expressions`).

Each template string is compiled once and cached.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import string
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
    filters,
    meta,
    pass_eval_context,
)
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from pardag.errors import ExpressionError

if TYPE_CHECKING:
    from pardag.kinds.base import RunContext

__all__ = [
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "NameMissing",
    "Sandbox",
    "available_names",
    "environment",
    "is_template",
    "listing",
    "missing_names",
    "namespace",
    "render",
    "suggest",
    "template_problems",
    "to_text",
]

MAX_LENGTH = 1_000_000
"""Longest string or list an operator in a template or expression may build."""

MAX_EXPONENT = 10_000
"""Largest exponent magnitude ``**`` accepts."""

MAX_INT_BITS = 100_000
"""Largest integer (in bits, about 30,000 decimal digits) ``*`` and ``**`` may build."""

_MAX_LISTED = 20
_MAX_QUOTED = 200
_SINGLE = re.compile(r"\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}", re.DOTALL)


class NameMissing(UndefinedError):
    """A top-level name is not defined (the caller adds which names are)."""


class _Undefined(StrictUndefined):
    """Fails on any use, with a message that lists the keys a mapping does have."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if obj is missing and hint is None and exc is UndefinedError:
            self._undefined_exception = NameMissing

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name, obj = self._undefined_name, self._undefined_obj
        if obj is missing:
            return f"name {name!r} is not defined"
        if isinstance(obj, Mapping):
            keys = [key for key in obj if isinstance(key, str)]
            listed = f"its keys: {listing(sorted(keys))}" if keys else "it has no string keys"
            return f"key {name!r} not found; {listed}{suggest(str(name), keys)}"
        if isinstance(name, int) and isinstance(obj, list | tuple | str):
            return f"index {name} is out of range (length {len(obj)})"
        return f"{type(obj).__name__} value {_short(obj)} has no attribute or key {name!r}"


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


class Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox with pardag's rules: mapping keys first, guarded operators.

    Shared by templates and ``when``/condition expressions so both read names alike.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operation before it builds something huge."""
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
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                if attribute.startswith("_"):
                    return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

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
    return json.dumps(value, indent=indent, default=str)


def to_text(value: Any) -> str:
    """How a substituted value reads in text: strings as-is, numbers by str(), else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


@functools.cache
def environment(quote: Callable[[str], str] | None = None) -> Sandbox:
    """The sandbox for templates, one per ``quote`` function (its finalize step)."""
    finalize: Callable[[Any], str] = (
        to_text if quote is None else (lambda value: quote(to_text(value)))
    )
    env = Sandbox(
        undefined=_Undefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters.update(
        {"tojson": _tojson, "center": _center, "indent": _indent, "replace": _replace}
    )
    env.filters["format"] = _format
    del env.globals["lipsum"]
    env.globals.update(_GLOBALS)
    env.tests.update({"None": env.tests["none"], "True": env.tests["true"]})
    env.tests["False"] = env.tests["false"]
    return env


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


def namespace(inputs: Mapping[str, Any], ctx: RunContext, **extra: Any) -> dict[str, Any]:
    """The names a step's templates read; ``extra`` adds or overrides some."""
    return {
        "inputs": inputs,
        "steps": {dep: {"output": value} for dep, value in inputs.items()},
        "params": ctx.params,
        "trigger": ctx.params,
        "env": os.environ,
        **extra,
    }


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string that needs rendering."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render(
    value: Any,
    names: Mapping[str, Any],
    *,
    where: str,
    quote: Callable[[str], str] | None = None,
) -> Any:
    """``value`` with every template string in it (dicts and lists too) rendered.

    Raises :class:`~pardag.errors.ExpressionError` naming ``where`` and the template.
    """
    if isinstance(value, str):
        return _render_string(value, names, where, quote) if is_template(value) else value
    if isinstance(value, Mapping):
        return {key: render(item, names, where=where, quote=quote) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(render(item, names, where=where, quote=quote) for item in value)
    return value


def template_problems(value: Any, where: str) -> list[str]:
    """Syntax problems of every template string in ``value``, each saying where and what."""
    if isinstance(value, str):
        if not is_template(value):
            return []
        try:
            _compiled(value, None)
        except TemplateSyntaxError as exc:
            return [_syntax_message(value, where, exc)]
        return []
    if isinstance(value, Mapping):
        return [p for item in value.values() for p in template_problems(item, where)]
    if isinstance(value, list | tuple):
        return [p for item in value for p in template_problems(item, where)]
    return []


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, quote: Callable[[str], str] | None) -> Template | Any:
    """The compiled template, or the compiled expression when ``source`` is one ``{{ }}``."""
    env = environment(quote)
    single = _SINGLE.fullmatch(source)
    if single is not None and quote is None:
        return env.compile_expression(single["expr"], undefined_to_none=False)
    return env.from_string(source)


def _render_string(
    source: str, names: Mapping[str, Any], where: str, quote: Callable[[str], str] | None
) -> Any:
    try:
        compiled = _compiled(source, quote)
        if isinstance(compiled, Template):
            return compiled.render(names)
        result = compiled(names)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result
    except TemplateSyntaxError as exc:
        raise ExpressionError(_syntax_message(source, where, exc), where, source) from None
    except NameMissing as exc:
        problem = f"{exc}; {available_names(names, missing_names(source, names))}"
        raise ExpressionError(_message(source, where, problem), where, source) from None
    except Exception as exc:
        problem = str(exc) if isinstance(exc, UndefinedError | SecurityError) else _describe(exc)
        raise ExpressionError(_message(source, where, problem), where, source) from exc


def missing_names(source: str, names: Mapping[str, Any]) -> list[str]:
    """The names ``source`` reads that neither ``names`` nor the globals define."""
    env = environment()
    used = meta.find_undeclared_variables(env.parse(source))
    return sorted(used - set(names) - set(env.globals))


def available_names(names: Mapping[str, Any], wanted: list[str]) -> str:
    """``"available: a, b; did you mean 'a'?"`` for the first of ``wanted``."""
    available = sorted(str(name) for name in names)
    if not available:
        return "no names are available"
    close = suggest(wanted[0], available) if wanted else ""
    return f"available: {listing(available)}{close}"


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _syntax_message(source: str, where: str, exc: TemplateSyntaxError) -> str:
    line = f" (line {exc.lineno})" if "\n" in source.strip() and exc.lineno else ""
    return _message(source, where, f"template syntax error{line}: {exc.message}")


def _message(source: str, where: str, problem: str) -> str:
    quoted = repr(source) if len(source) <= _MAX_QUOTED else f"{source[:_MAX_QUOTED]!r}..."
    return f"{where}: {problem} (in template {quoted})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def listing(items: list[str]) -> str:
    """Up to 20 items, comma-separated, with a count of the rest."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def suggest(word: str, candidates: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
