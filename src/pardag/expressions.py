"""Expressions for ``when:`` preconditions and condition steps, on Jinja2's sandbox.

Workflow files say things like ``when: "extract.count > 10 and params.mode == 'full'"``. The
text is a Jinja2 expression (what goes between ``{{ }}`` in a template), compiled once in
Jinja2's sandbox (:class:`pardag.templates.Sandbox`) and evaluated per run. The names it reads
are given by the caller; :func:`expression_names` builds the usual ones: each dependency's
output by id, ``inputs`` (all of them), ``steps.ID.output``, ``params`` and ``trigger`` (the
run's params).

What works, written as in Python: literals, names, ``a.b`` (a mapping's key first), ``a[i]``,
``a[i:j]``, comparisons (``== != < <= > >= in``, ``not in``, chained), ``and``/``or``/``not``,
``+ - * / // % **``, ``x if c else y``, lists, tuples and dicts, calls to ``len min max abs
round int float str bool sum any all sorted range`` and to string methods (``x.lower()``).
``true``/``false``/``null`` and ``True``/``False``/``None`` are all literals (``null`` yields
to a provided name). Jinja2 adds filters (``x | length``, ``x | default(0)``), tests (``x is
defined``, ``x is none``; ``x is None`` also works) and ``~`` to join strings.

Differences from Python worth knowing: ``**`` binds left to right and after unary minus
(``2 ** 3 ** 2`` is 64, ``-2 ** 2`` is 4: add parentheses); there are no f-strings,
comprehensions, lambdas or bitwise operators (``|`` is a filter); ``%`` on strings is refused
(use ``~`` or ``"{}".format(x)``).

Safety: the sandbox refuses private and internal attributes (``_x``, ``__class__``, frames,
code) and the methods that change a dict, list or set (``params.update(...)``,
``x.append(...)``): the names are read-only views of the run's data (:mod:`pardag.readonly`),
so an expression never changes what a step or a later run sees. Pardag's sandbox also refuses
to build huge values: exponents above ``MAX_EXPONENT``, integers above ``MAX_INT_BITS``,
strings and lists longer than ``MAX_LENGTH`` from ``*``, ``+``, ``~``, ``str.replace``/``center``,
``format``, ``sum`` and ``range``, and every call, filter and test is charged to the
evaluation's budget (:mod:`pardag.budget`), which stops it past its operation count or the
step's or run's timeout. Values merely read from names are
not limited. Text over ``MAX_SOURCE`` characters is refused at compile time.

Errors: a bad expression raises :class:`~pardag.errors.ArgumentError` at validation time,
naming ``where``, the expression, the column and what was expected; a failure while
evaluating raises :class:`~pardag.errors.ExpressionError` saying what failed, e.g. ``step
'load' when: name 'extrct' is not defined; available: extract, params; did you mean
'extract'? (in 'extrct.count > 10')``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateAssertionError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.lexer import TOKEN_WHITESPACE
from jinja2.parser import Parser
from jinja2.runtime import Undefined

from pardag.budget import RenderLimit, metered
from pardag.errors import ArgumentError, ExpressionError
from pardag.readonly import freeze, thaw
from pardag.reads import Reads, reads_of
from pardag.sandbox import MAX_EXPONENT, MAX_INT_BITS, MAX_LENGTH
from pardag.templates import NameMissing, available_names, environment
from pardag.triggerdata import TriggeredParams

__all__ = [
    "EXPRESSION_NAMES",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "MAX_SOURCE",
    "Expression",
    "ExpressionError",
    "compile_expression",
    "expression_names",
]

MAX_SOURCE = 2_000
"""Longest expression text compiled; keeps Jinja2's recursive parser within the stack."""

MAX_DEPTH = 50
"""Deepest nesting of sub-expressions accepted (Python's compiler caps what Jinja2 emits)."""

EXPRESSION_NAMES = frozenset({"inputs", "steps", "params", "trigger"})
"""The names :func:`expression_names` gives besides the dependency ids."""

_MAX_QUOTED = 200
_ALLOWED = (
    "write a Jinja2 expression: names, a.b, a[i], comparisons (== != < <= > >= in, not in), "
    "and/or/not, + - * / // % **, x if cond else y, and calls such as len(x)"
)
_ASSERTION_HINT = (
    " ('x | f' applies the filter f and 'x is t' the test t; "
    "for a logical or write 'or', for None write 'x is none')"
)
_UNEXPECTED_CHAR = re.compile(r"unexpected char (?P<char>.+) at (?P<at>\d+)$")


@dataclass(frozen=True)
class Expression:
    """A compiled expression, ready to evaluate; make one with :func:`compile_expression`.

    ``names_used`` are the top-level names it reads (leaving out the built-in functions and
    ``null``) and ``reads`` the keys of them it reads, so validation can check them against a
    step's dependencies and the workflow's params.
    """

    source: str
    where: str
    names_used: frozenset[str]
    _call: Callable[..., Any] = field(repr=False, compare=False)
    reads: Reads = field(default=Reads(), repr=False, compare=False)
    """What it reads: ``names_used`` and the keys written out (``steps.fetch``, ``params.x``)."""

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The value with ``names`` bound, as plain data (never a read-only view); raises
        :class:`ExpressionError` when it fails."""
        try:
            with metered():
                result = self._call(names)
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()
                return thaw(result)
        except NameMissing as exc:
            wanted = sorted(self.names_used - set(names))
            raise self._error(f"{exc}; {available_names(names, wanted)}") from None
        except (UndefinedError, SecurityError, RenderLimit) as exc:
            raise self._error(str(exc)) from None
        except RecursionError as exc:
            raise self._error("too deeply nested to evaluate") from exc
        except Exception as exc:
            raise self._error(f"cannot evaluate: {type(exc).__name__}: {exc}") from exc

    def _error(self, problem: str) -> ExpressionError:
        return ExpressionError(_message(self.where, problem, self.source), self.where, self.source)

    def __reduce__(self) -> tuple[Callable[..., Expression], tuple[str, str]]:
        return (_recompile, (self.source, self.where))


def _recompile(source: str, where: str) -> Expression:
    return compile_expression(source, where=where)


def compile_expression(source: str, *, where: str) -> Expression:
    """Compile ``source``; raises :class:`~pardag.errors.ArgumentError` when it is bad.

    ``where`` names the place for messages, e.g. ``"flow.yaml:12: step 'load' when"``.
    """
    if not isinstance(source, str):
        raise ArgumentError(
            f"{where}: an expression must be a string, got {type(source).__name__} "
            f'{source!r}; quote it in YAML, e.g. "x > 1"'
        )
    text = source.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ArgumentError(f"{where}: the expression is empty; {_ALLOWED}")
    if len(text) > MAX_SOURCE:
        problem = f"longer than {MAX_SOURCE} characters"
        raise ArgumentError(_message(where, problem, text) + "; compute it in a step instead")
    tree, template = _parse(text, where)
    names_used = {
        node.name for node in (tree, *tree.find_all(nodes.Name)) if isinstance(node, nodes.Name)
    }

    def call(names: Mapping[str, Any]) -> Any:
        context = template.new_context(dict(names))
        for _ in template.root_render_func(context):
            pass
        return context.vars["result"]

    used = frozenset(names_used - set(template.globals))
    return Expression(source, where, used, call, reads_of(tree, used))


def expression_names(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The names a ``when`` or condition expression reads (read-only views): each input by
    id, and the rest.

    ``inputs``, ``steps`` (``steps.ID.output``), ``params`` and ``trigger`` (the run's trigger
    data, else its params: ``pardag.triggerdata``) win over a dependency of the same name.
    """
    frozen = freeze(params)
    trigger = params.trigger if isinstance(params, TriggeredParams) else None
    return {
        **{dep: freeze(value) for dep, value in inputs.items()},
        "inputs": freeze(inputs),
        "steps": freeze({dep: {"output": value} for dep, value in inputs.items()}),
        "params": frozen,
        "trigger": frozen if trigger is None else freeze(trigger),
    }


def _parse(text: str, where: str) -> tuple[nodes.Expr, Template]:
    """The tree and its compiled template; a syntax error names the column and the fix."""
    env = environment()
    parser: Parser | None = None
    try:
        parser = Parser(env, text, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(f"unexpected {token.value!r}", token.lineno)
        if _depth(tree) > MAX_DEPTH:
            problem = f"nested more than {MAX_DEPTH} levels deep"
            raise ArgumentError(_message(where, problem, text) + "; split it up")
        tree.set_environment(env)
        assign = nodes.Assign(nodes.Name("result", "store", lineno=1), tree, lineno=1)
        template = env.from_string(nodes.Template([assign], lineno=1))  # checks filters, tests
    except TemplateAssertionError as exc:  # an unknown filter or test
        problem = f"{exc.message}{_ASSERTION_HINT}"
        raise ArgumentError(_message(where, problem, text)) from None
    except TemplateSyntaxError as exc:
        at = _location(text, exc, parser)
        problem = f"invalid syntax: {_plain(exc.message or '')}"
        raise ArgumentError(_message(where, problem, text, at) + f"; {_ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise ArgumentError(_message(where, "nested too deeply", text) + "; split it up") from None
    return tree, template


def _depth(tree: nodes.Node) -> int:
    """How deeply ``tree`` nests (walked without recursion)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def _plain(message: str) -> str:
    """Jinja2's wording, minus its template vocabulary."""
    message = _UNEXPECTED_CHAR.sub(lambda m: f"unexpected character {m['char']}", message)
    return message.replace("end of template", "end of the expression").replace(
        "end of print statement", "end of the expression"
    )


def _location(text: str, exc: TemplateSyntaxError, parser: Parser | None) -> str | None:
    """Where in ``text`` the error is, as ``column N`` (``line L, column N`` if multi-line)."""
    char = _UNEXPECTED_CHAR.search(exc.message or "")
    if char is not None:
        return _column_words(text, int(char["at"]))
    if parser is None:
        return None
    offsets = _token_offsets(text)
    try:
        remaining = sum(1 for _ in parser.stream)  # tokens from the failing one to the end
    except TemplateSyntaxError:  # text after the failing token the lexer cannot read
        return None
    index = len(offsets) - remaining
    if not 0 <= index < len(offsets):
        return "the end"
    return _column_words(text, offsets[index])


def _token_offsets(text: str) -> list[int]:
    """Where each significant token of ``text`` starts (whitespace skipped), up to the first
    text the lexer cannot read (a parse error can come before a lexing one: ``a b 'c``)."""
    offsets: list[int] = []
    position = 0
    with contextlib.suppress(TemplateSyntaxError):
        for _, kind, value in environment().lexer.tokeniter(text, None, state="variable"):
            if kind != TOKEN_WHITESPACE:
                offsets.append(position)
            position += len(value)
    return offsets


def _column_words(text: str, offset: int) -> str:
    if offset >= len(text):
        return "the end"
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"column {column}" if "\n" not in text else f"line {line}, column {column}"


def _message(where: str, problem: str, source: str, at: str | None = None) -> str:
    text = source.strip()
    quoted = repr(text) if len(text) <= _MAX_QUOTED else f"{text[:_MAX_QUOTED]!r}..."
    place = f"{at} of {quoted}" if at else f"in {quoted}"
    return f"{where}: {problem} ({place})"
