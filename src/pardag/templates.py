"""Templates in step params: ``"https://api/{{ steps.fetch.output.id }}"``, rendered per run.

A workflow file writes values that depend on the run: an upstream step's output, the run's
params, an environment variable. Such strings are Jinja2 templates, rendered in Jinja2's
sandbox when the step starts, with :func:`namespace` as the names they can read:

* ``inputs``: the dependencies' outputs by id; ``steps.ID.output``: the same, one by one;
* ``params`` and ``trigger``: the run's params (its trigger data);
* ``env``: the process environment, as it was when the run's first template read it;
* ``secrets.NAME``: the run's secrets (declared with ``secrets:``), masked wherever shown.

All of them are read-only: the sandbox refuses ``update``, ``append``, ``pop`` and the other
methods that change a dict, list or set, and the names are read-only views
(:mod:`pardag.readonly`) of the run's data, ``env`` a copy of ``os.environ``, so that no
template changes what another step, the runner or a later run sees.

Rules worth knowing:

* A string that is exactly one ``{{ expr }}`` keeps the value's type (a number stays a number,
  a mapping a mapping); anything else renders to text.
* Substituted values render as text like this: strings as they are, numbers with ``str()``,
  and ``true``/``false``/``null``, lists and mappings as JSON.
* Undefined names and keys are errors (``StrictUndefined``), never empty strings: the message
  names the place, the template and the names (or keys) that are available.
* ``quote`` is applied to every substituted value (shell text uses
  :func:`pardag.shellvalues.mark`, a token later replaced by a variable reference); the
  template's own text is left as written. With a ``quote``, a lone ``{{ expr }}`` renders
  to text too.
* ``text`` replaces :func:`to_text` as the rule for substituted values, for formats whose
  engines write values otherwise (node graphs print the float ``42.0`` as ``42``).
* Only strings containing ``{{`` or ``{%`` are templates; comments are ``{## ... ##}`` (not
  Jinja's usual ``{# #}``, which would clash with the shell's ``${#var}``).
* ``a.b`` reads the key ``b`` of a mapping first (so ``output.items`` is the key, not the
  dict method); the sandbox refuses private attributes and guards ``*``, ``**``, ``%``, ``~``
  and ``range`` against building huge values (see :mod:`pardag.sandbox`).
* A render stops itself when it loops too long: past its operation budget or the step's or
  run's timeout (see :mod:`pardag.budget`).

Each template string is compiled once and cached.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import Undefined
from jinja2.utils import missing

from pardag.budget import RenderLimit, metered
from pardag.errors import ExpressionError
from pardag.readonly import (
    Environment,
    ReadOnlyList,
    environment_snapshot,
    freeze,
    json_default,
    thaw,
    unwrap,
)
from pardag.sandbox import (
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_LENGTH,
    Sandbox,
    read_only_problem,
    writable,
)
from pardag.secrets import secrets_of
from pardag.triggerdata import TriggeredParams

if TYPE_CHECKING:
    from pardag.kinds.base import RunContext

__all__ = [
    "ITEM_NAMES",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "TEMPLATE_NAMES",
    "ItemInputs",
    "NameMissing",
    "Sandbox",
    "available_names",
    "environment",
    "is_template",
    "listing",
    "missing_names",
    "namespace",
    "parse",
    "render",
    "suggest",
    "template_problems",
    "to_text",
]

TEMPLATE_NAMES = frozenset({"inputs", "steps", "params", "trigger", "env", "secrets"})
"""The names :func:`namespace` gives every step's templates (a kind may add more)."""
ITEM_NAMES = frozenset({"item", "item_index"})
"""The names an instance of a mapped step's templates read besides (its item, its index)."""

_ENV_KEY = "pardag.templates.env"
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
        refused = read_only_problem(obj, name)
        if refused is not None:  # ``view | attr("update")``: a view has no such method
            return refused
        if isinstance(obj, Environment):
            return (
                f"the environment has no variable {name!r}; set it where pardag runs, or "
                f"write env.get({name!r}, default){suggest(str(name), list(obj))}"
            )
        if isinstance(obj, Mapping):
            keys = [key for key in obj if isinstance(key, str)]
            listed = f"its keys: {listing(sorted(keys))}" if keys else "it has no string keys"
            return f"key {name!r} not found; {listed}{suggest(str(name), keys)}"
        if isinstance(name, int) and isinstance(obj, list | tuple | str | ReadOnlyList):
            return f"index {name} is out of range (length {len(obj)})"
        kind = type(unwrap(obj)).__name__
        return f"{kind} value {_short(obj)} has no attribute or key {name!r}"


def to_text(value: Any) -> str:
    """How a substituted value reads in text: strings as-is, numbers by str(), else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    try:
        return json.dumps(value, default=json_default)
    except (TypeError, ValueError):
        return str(value)


@functools.cache
def environment(
    quote: Callable[[str], str] | None = None, text: Callable[[Any], str] | None = None
) -> Sandbox:
    """The sandbox with the templating rules (undefined names, ``to_text``, ``{## ##}``
    comments), one per ``quote`` and ``text`` function (its finalize step)."""
    as_text = to_text if text is None else text

    def written(value: Any) -> str:  # refused before it writes out a huge value
        return as_text(value if type(value) is str else writable(value))

    finalize: Callable[[Any], str] = (
        written if quote is None else (lambda value: quote(written(value)))
    )
    return Sandbox(
        undefined=_Undefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
        comment_start_string="{##",
        comment_end_string="##}",
    )


class ItemInputs(dict[str, Any]):
    """The inputs of one instance of a mapped step, carrying its item and index beside them,
    so that every kind's templates read ``{{ item }}`` without each kind knowing of maps."""

    __slots__ = ("item", "item_index")

    def __init__(self, inputs: Mapping[str, Any], item: Any, item_index: int) -> None:
        super().__init__(inputs)
        self.item, self.item_index = item, item_index


def namespace(inputs: Mapping[str, Any], ctx: RunContext, **extra: Any) -> dict[str, Any]:
    """The names a step's templates read, each a read-only view; ``extra`` adds or overrides
    some. ``env`` is one snapshot of ``os.environ`` per run (taken on first use). An
    instance of a mapped step (``ItemInputs``) also has ``item`` and ``item_index``."""
    params = freeze(ctx.params)
    trigger = ctx.params.trigger if isinstance(ctx.params, TriggeredParams) else None
    if isinstance(inputs, ItemInputs):
        extra = {"item": inputs.item, "item_index": inputs.item_index, **extra}
    return {
        "inputs": freeze(inputs),
        "steps": freeze({dep: {"output": value} for dep, value in inputs.items()}),
        "params": params,
        "trigger": params if trigger is None else freeze(trigger),
        "env": ctx.shared(_ENV_KEY, environment_snapshot),
        "secrets": freeze(dict(secrets_of(ctx))),  # the values; every sink masks them
        **{name: freeze(value) for name, value in extra.items()},
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
    text: Callable[[Any], str] | None = None,
) -> Any:
    """``value`` with every template string in it (dicts and lists too) rendered.

    A value a lone ``{{ expr }}`` yields is plain data (:func:`pardag.readonly.thaw`), never a
    view. Raises :class:`~pardag.errors.ExpressionError` naming ``where`` and the template.
    All of ``value`` renders on one budget (:mod:`pardag.budget`).
    """
    if isinstance(value, str):
        return _render_string(value, names, where, quote, text) if is_template(value) else value
    if isinstance(value, Mapping):
        with metered():
            return {
                k: render(v, names, where=where, quote=quote, text=text) for k, v in value.items()
            }
    if isinstance(value, list | tuple):
        with metered():
            return type(value)(render(v, names, where=where, quote=quote, text=text) for v in value)
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
def _compiled(
    source: str, quote: Callable[[str], str] | None, text: Callable[[Any], str] | None = None
) -> Template | Any:
    """The compiled template, or the compiled expression when ``source`` is one ``{{ }}``."""
    env = environment(quote, text)
    single = _SINGLE.fullmatch(source)
    with _not_too_deep():
        if single is not None and quote is None:
            return env.compile_expression(single["expr"], undefined_to_none=False)
        return env.from_string(source)


def parse(source: str) -> nodes.Template:
    """``source``'s parsed tree (for what it reads); a syntax problem is TemplateSyntaxError."""
    with _not_too_deep():
        return environment().parse(source)


@contextlib.contextmanager
def _not_too_deep() -> Iterator[None]:
    """Jinja2 parses and compiles recursively: a template nested hundreds of levels deep
    (``((((...))))``) exhausts Python's stack. That is a problem of the template, said so."""
    try:
        yield
    except (RecursionError, MemoryError):
        raise TemplateSyntaxError(
            "the template is nested too deeply to compile; split it into smaller parts", 1
        ) from None


def _render_string(
    source: str,
    names: Mapping[str, Any],
    where: str,
    quote: Callable[[str], str] | None,
    text: Callable[[Any], str] | None = None,
) -> Any:
    try:
        compiled = _compiled(source, quote, text)
        with metered():
            if isinstance(compiled, Template):
                return compiled.render(names)
            result = compiled(names)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return thaw(result)
    except TemplateSyntaxError as exc:
        raise ExpressionError(_syntax_message(source, where, exc), where, source) from None
    except NameMissing as exc:
        problem = f"{exc}; {available_names(names, missing_names(source, names))}"
        raise ExpressionError(_message(source, where, problem), where, source) from None
    except Exception as exc:
        known = isinstance(exc, UndefinedError | SecurityError | RenderLimit)
        problem = str(exc) if known else _describe(exc)
        raise ExpressionError(_message(source, where, problem), where, source) from exc


def missing_names(source: str, names: Mapping[str, Any]) -> list[str]:
    """The names ``source`` reads that neither ``names`` nor the globals define."""
    used = meta.find_undeclared_variables(parse(source))
    return sorted(used - set(names) - set(environment().globals))


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
