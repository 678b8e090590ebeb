"""A small, safe expression language for ``when:`` preconditions and condition steps.

Workflow files say things like ``when: "extract.count > 10 and params.mode == 'full'"``.
Those strings are parsed with :func:`ast.parse` but never handed to :func:`eval` or
:func:`compile`; a tiny evaluator walks the tree instead. Doing it ourselves buys three things:

* **Safety.** Only an allow-list of constructs gets past :func:`compile_expression`, checked
  once when the workflow is validated: literals, names, ``a.b``, ``a[i]``, slices,
  comparisons, ``and``/``or``/``not``, arithmetic, ``x if c else y``, simple f-strings, calls
  to a handful of builtins and a few string methods. No lambdas, comprehensions, ``:=``,
  imports, private (``_x``) or dunder attributes, and no way to call anything else. Evaluation
  guards against resource abuse: exponents above ``MAX_EXPONENT``, integers above
  ``MAX_INT_BITS`` and strings or lists longer than ``MAX_LENGTH`` are refused, before they
  are built wherever building them is what costs (``**``, ``*``, ``+``, ``.replace()``,
  ``sum()``, ``round()``). The limits apply to what an expression builds, not to values it
  merely reads from its names. Nesting is capped at compile time (``MAX_DEPTH``) so no
  ``RecursionError`` can escape.
* **Clear errors.** Every message names the place (``where``), quotes the expression, gives the
  column, and says what is allowed or what is available, e.g. ``step 'load' when: name
  'extrct' is not defined (column 1 of 'extrct.count > 10'); available: extract, params; did
  you mean 'extract'?``. Bad expressions raise :class:`~pardag.errors.ArgumentError` at
  validation time, never a bare ``SyntaxError``; failures while evaluating raise
  :class:`ExpressionError`.
* **YAML-friendly names.** ``a.b`` on a mapping means ``a["b"]`` (results are usually dicts),
  ``true``/``false``/``null`` are aliases of ``True``/``False``/``None`` unless a provided
  name shadows them, and multi-line expressions (YAML block scalars) are read as if wrapped
  in parentheses.

Decisions worth knowing:

* f-strings are allowed when simple: ``f"{x}"``, ``f"{x!r}"`` and constant format specs such
  as ``f"{x:.2f}"`` whose numbers are at most 100 (so a width cannot allocate gigabytes).
  Nested fields in a spec (``f"{x:{w}}"``) are refused. ``%`` formatting of strings is refused
  at evaluation time for the same reason.
* Attributes starting with ``_`` are refused at compile time even on mappings; write
  ``a["_x"]`` for such keys. On objects, attributes that lead to frames and code
  (``gi_frame``, ``f_globals``, ...) are refused at evaluation time.
* Called builtins are always the builtins: a provided name ``len`` does not change what
  ``len(x)`` calls (it can still be read as a plain name).
* ``names_used`` lists the names the expression reads; it leaves out called builtins and the
  ``true``/``false``/``null`` aliases.
* Bitwise operators (``& | ^ ~ << >>``) are refused with a hint to use ``and``/``or``/``not``;
  bytes literals and ``...`` are refused.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pardag.errors import ArgumentError, ExpressionError

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "MAX_SOURCE",
    "Expression",
    "ExpressionError",
    "compile_expression",
]

MAX_SOURCE = 2_000
"""Longest expression text parsed; keeps the AST well within CPython's recursion limits."""

MAX_DEPTH = 100
"""Deepest nesting of sub-expressions :func:`compile_expression` accepts."""

MAX_EXPONENT = 10_000
"""Largest exponent magnitude ``**`` accepts."""

MAX_LENGTH = 1_000_000
"""Longest string, list, tuple, set or dict an operation may produce."""

MAX_INT_BITS = 100_000
"""Largest integer (in bits, about 30,000 decimal digits) arithmetic may produce."""

_ALIASES: dict[str, Any] = {"true": True, "false": False, "null": None}

_BINARY_OPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}

_REFUSED_OPS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}

_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}

_COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_STR_METHODS: dict[str, frozenset[str]] = {
    "lower": frozenset(),
    "upper": frozenset(),
    "strip": frozenset(),
    "startswith": frozenset(),
    "endswith": frozenset(),
    "split": frozenset({"sep", "maxsplit"}),
    "replace": frozenset(),
}

_FUNCTION_KEYWORDS: dict[str, frozenset[str]] = {
    "len": frozenset(),
    "int": frozenset({"base"}),
    "float": frozenset(),
    "str": frozenset(),
    "bool": frozenset(),
    "abs": frozenset(),
    "min": frozenset({"default"}),
    "max": frozenset({"default"}),
    "round": frozenset({"ndigits"}),
    "sum": frozenset({"start"}),
    "any": frozenset(),
    "all": frozenset(),
    "sorted": frozenset({"reverse"}),
}

_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda expressions",
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.NamedExpr: "':=' assignments",
    ast.Starred: "starred expressions ('*x')",
    ast.Await: "'await' expressions",
    ast.Yield: "'yield' expressions",
    ast.YieldFrom: "'yield from' expressions",
}

# Attributes that lead from ordinary objects to frames, code and module globals.
_UNSAFE_ATTRIBUTES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "tb_frame",
        "tb_next",
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "func_code",
        "func_globals",
        "mro",
    }
)

_CONVERSIONS: dict[int, Callable[[Any], str]] = {ord("s"): str, ord("r"): repr, ord("a"): ascii}
_SEQUENCE_TYPES = (str, bytes, list, tuple)
_SIZED_RESULTS = (str, bytes, list, tuple, dict, set, frozenset)
_NUMBER_TYPES = (int, float, complex)
_MAX_FORMAT_NUMBER = 100
_MAX_LISTED = 20
_MAX_QUOTED = 200

_ALLOWED_FUNCTIONS = ", ".join(f"{name}()" for name in sorted(_FUNCTION_KEYWORDS))
_ALLOWED_METHODS = ", ".join(f".{name}()" for name in sorted(_STR_METHODS))
_ALLOWED_CALLS = (
    f"only {_ALLOWED_FUNCTIONS} and the string methods {_ALLOWED_METHODS} can be called"
)
_ALLOWED_SUMMARY = (
    "allowed: literals, names, a.b, a[i], a[i:j], comparisons (== != < <= > >= in, not in, "
    "is, is not), and/or/not, + - * / // % **, x if cond else y, simple f-strings, and calls to "
    f"{_ALLOWED_FUNCTIONS} and the string methods {_ALLOWED_METHODS}"
)


class _Fail(Exception):
    """Internal: a problem at ``node``, turned into a full message by the caller."""

    def __init__(self, node: ast.AST | None, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.node = node
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True)
class _Source:
    """The text as shown to users and as parsed, and how to locate nodes in it."""

    text: str
    parsed: str
    line_shift: int

    @classmethod
    def of(cls, source: str) -> _Source:
        text = source.replace("\r\n", "\n").replace("\r", "\n").strip()
        if "\n" in text:
            # A YAML block scalar: read it as if in parentheses, keeping lines and columns.
            return cls(text, f"(\n{text}\n)", 1)
        return cls(text, text, 0)

    def location(self, lineno: int, column: int) -> str:
        """Where a 1-based (line, character column) of ``parsed`` is, in words."""
        lines = self.text.split("\n")
        line = lineno - self.line_shift
        if line > len(lines) or column < 1:
            return "the end"
        if len(lines) == 1:
            return f"column {column}"
        return f"line {max(line, 1)}, column {column}"

    def node_location(self, node: ast.AST) -> str:
        lineno: int = getattr(node, "lineno", 1)
        byte_col: int = getattr(node, "col_offset", 0)
        line = self.parsed.split("\n")[lineno - 1]
        column = len(line.encode()[:byte_col].decode(errors="replace")) + 1
        return self.location(lineno, column)

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.parsed, node) or ast.unparse(node)

    def message(self, where: str, problem: str, at: str | None, hint: str = "") -> str:
        quoted = (
            repr(self.text) if len(self.text) <= _MAX_QUOTED else f"{self.text[:_MAX_QUOTED]!r}..."
        )
        place = f"{at} of {quoted}" if at else quoted
        return f"{where}: {problem} ({place})" + (f"; {hint}" if hint else "")


@dataclass(frozen=True)
class Expression:
    """A checked expression, ready to evaluate; make one with :func:`compile_expression`.

    ``source`` is the text as given, ``where`` the place it came from, and ``names_used`` the
    names it reads (without called builtins and the ``true``/``false``/``null`` aliases), so
    validation can check them against a step's dependencies.
    """

    source: str
    where: str
    names_used: frozenset[str]
    _tree: ast.Expression = field(repr=False, compare=False)
    _text: _Source = field(repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The value of the expression with ``names`` bound; raises :class:`ExpressionError`."""
        try:
            return _Evaluator(names, self._text).evaluate(self._tree.body)
        except _Fail as fail:
            at = self._text.node_location(fail.node) if fail.node is not None else None
            message = self._text.message(self.where, fail.problem, at, fail.hint)
            raise ExpressionError(message, self.where, self.source) from fail.__cause__
        except RecursionError as exc:  # only when called with almost no stack left
            message = self._text.message(self.where, "too deeply nested to evaluate", None)
            raise ExpressionError(message, self.where, self.source) from exc


def compile_expression(source: str, *, where: str) -> Expression:
    """Parse and check ``source``; raises :class:`~pardag.errors.ArgumentError` when it is bad.

    ``where`` names the place for messages, e.g. ``"step 'load' when"``.
    """
    if not isinstance(source, str):
        raise ArgumentError(
            f"{where}: an expression must be a string, got {type(source).__name__} "
            f'{source!r}; quote it in YAML, e.g. "x > 1"'
        )
    text = _Source.of(source)
    if not text.text:
        raise ArgumentError(f"{where}: the expression is empty; {_ALLOWED_SUMMARY}")
    tree = _parse(text, where)
    try:
        names_used = _check(tree)
    except _Fail as fail:
        at = text.node_location(fail.node) if fail.node is not None else None
        raise ArgumentError(text.message(where, fail.problem, at, fail.hint)) from None
    return Expression(source, where, names_used, tree, text)


def _parse(text: _Source, where: str) -> ast.Expression:
    if len(text.parsed) > MAX_SOURCE:
        # CPython 3.11 leaves its AST converter's depth counter wrong after a RecursionError,
        # breaking every later ast.parse in the thread; so very long text is never parsed.
        problem = f"longer than {MAX_SOURCE} characters (too long or nested too deep to check)"
        raise ArgumentError(text.message(where, problem, None, "compute it in a step instead"))
    try:
        return ast.parse(text.parsed, mode="eval")
    except SyntaxError as exc:
        at = None if exc.offset is None else text.location(exc.lineno or 1, exc.offset)
        problem = "invalid syntax" if exc.msg == "invalid syntax" else f"invalid syntax: {exc.msg}"
    except (RecursionError, MemoryError):
        problem = f"nested more than {MAX_DEPTH} levels deep"
        raise ArgumentError(text.message(where, problem, None, "split it up")) from None
    except ValueError as exc:  # e.g. a null byte
        at, problem = None, f"invalid syntax: {exc}"
    raise ArgumentError(text.message(where, problem, at, _ALLOWED_SUMMARY))


# --- compile-time check -----------------------------------------------------------------


def _check(tree: ast.Expression) -> frozenset[str]:
    """Check every node against the allow-list; return the names the expression reads."""
    names: set[str] = set()
    stack: list[tuple[ast.expr, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Fail(node, f"nested more than {MAX_DEPTH} levels deep", "split it up")
        _check_node(node)
        if isinstance(node, ast.Name) and node.id not in _ALIASES:
            names.add(node.id)
        stack.extend((child, depth + 1) for child in reversed(_children(node)))
    return frozenset(names)


def _children(node: ast.expr) -> list[ast.expr]:
    """The sub-expressions to check; a call's function is checked by the call itself."""
    if isinstance(node, ast.Call):
        receiver = [node.func.value] if isinstance(node.func, ast.Attribute) else []
        return [*receiver, *node.args, *(keyword.value for keyword in node.keywords)]
    return [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]


def _check_node(node: ast.expr) -> None:
    match node:
        case ast.Constant():
            _check_constant(node)
        case ast.Attribute():
            _check_attribute(node.attr, node)
        case ast.BinOp():
            _check_operator(node.op, node)
        case ast.UnaryOp():
            _check_operator(node.op, node)
        case ast.Dict() if any(key is None for key in node.keys):
            raise _Fail(node, "'**' unpacking is not allowed", _ALLOWED_SUMMARY)
        case ast.Call():
            _check_call(node)
        case ast.FormattedValue():
            _check_format_spec(node)
        case (
            ast.Name()
            | ast.Subscript()
            | ast.Slice()
            | ast.Compare()
            | ast.BoolOp()
            | ast.IfExp()
            | ast.List()
            | ast.Tuple()
            | ast.Set()
            | ast.Dict()
            | ast.JoinedStr()
        ):
            pass
        case _:
            what = _REFUSED_NODES.get(type(node), f"{type(node).__name__} expressions")
            raise _Fail(node, f"{what} are not allowed", _ALLOWED_SUMMARY)


def _check_constant(node: ast.Constant) -> None:
    if node.value is None or isinstance(node.value, (str, bool, *_NUMBER_TYPES)):
        return
    what = "bytes literals are" if isinstance(node.value, bytes) else f"{node.value!r} is"
    raise _Fail(node, f"{what} not allowed", _ALLOWED_SUMMARY)


def _check_attribute(name: str, node: ast.expr) -> None:
    if name.startswith("_"):
        raise _Fail(
            node,
            f"attribute {name!r} is not allowed: names starting with '_' are private",
            f"for a mapping key write x[{name!r}]",
        )


def _check_operator(op: ast.operator | ast.unaryop, node: ast.expr) -> None:
    symbol = _REFUSED_OPS.get(type(op))
    if symbol is not None:
        raise _Fail(
            node,
            f"operator {symbol!r} is not allowed",
            "use 'and', 'or' and 'not' for logic; " + _ALLOWED_SUMMARY,
        )


def _check_call(node: ast.Call) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in _FUNCTION_KEYWORDS:
        allowed, what = _FUNCTION_KEYWORDS[func.id], f"{func.id}()"
    elif isinstance(func, ast.Attribute) and func.attr in _STR_METHODS:
        allowed, what = _STR_METHODS[func.attr], f".{func.attr}()"
    elif isinstance(func, ast.Attribute):
        _check_attribute(func.attr, func)
        raise _Fail(node, f"calling method .{func.attr}() is not allowed", _ALLOWED_CALLS)
    elif isinstance(func, ast.Name):
        raise _Fail(node, f"calling {func.id!r} is not allowed", _ALLOWED_CALLS)
    else:
        raise _Fail(node, "calling the result of an expression is not allowed", _ALLOWED_CALLS)
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            problem = f"starred arguments ('*x') to {what} are not allowed"
            raise _Fail(arg, problem, "pass arguments one by one")
    for keyword in node.keywords:
        if keyword.arg is None:
            problem = f"'**' arguments to {what} are not allowed"
            raise _Fail(keyword.value, problem, "pass arguments one by one")
        if keyword.arg not in allowed:
            can = ", ".join(sorted(allowed)) or "none"
            raise _Fail(
                keyword.value,
                f"keyword argument {keyword.arg!r} to {what} is not allowed",
                f"allowed keywords: {can}",
            )


def _check_format_spec(node: ast.FormattedValue) -> None:
    spec = node.format_spec
    if spec is None:
        return
    parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
    if not all(isinstance(part, ast.Constant) for part in parts):
        raise _Fail(
            node,
            "nested fields in an f-string format spec are not allowed",
            "use a constant spec such as {x:.2f}",
        )
    text = "".join(str(part.value) for part in parts if isinstance(part, ast.Constant))
    if any(int(number) > _MAX_FORMAT_NUMBER for number in re.findall(r"\d+", text)):
        raise _Fail(
            node,
            f"f-string format spec {text!r} is too large",
            f"numbers in a format spec can be at most {_MAX_FORMAT_NUMBER}",
        )


# --- evaluation -------------------------------------------------------------------------


class _Evaluator:
    """Walks a checked tree; every failure becomes a :class:`_Fail` at the failing node."""

    def __init__(self, names: Mapping[str, Any], text: _Source) -> None:
        self.names = names
        self.text = text

    def evaluate(self, node: ast.expr) -> Any:
        try:
            return self._dispatch(node)
        except _Fail:
            raise
        except Exception as exc:
            problem = f"cannot evaluate {self.text.segment(node)!r}: {type(exc).__name__}: {exc}"
            raise _Fail(node, problem) from exc

    def _dispatch(self, node: ast.expr) -> Any:
        match node:
            case ast.Constant():
                return node.value
            case ast.Name():
                return self._name(node)
            case ast.Attribute():
                return self._attribute(node)
            case ast.Subscript():
                return self._subscript(node)
            case ast.Slice():
                return slice(
                    *(self._optional(part) for part in (node.lower, node.upper, node.step))
                )
            case ast.BoolOp():
                return self._bool_op(node)
            case ast.UnaryOp():
                return _UNARY_OPS[type(node.op)](self.evaluate(node.operand))
            case ast.BinOp():
                return self._sized(node, self._bin_op(node))
            case ast.Compare():
                return self._compare(node)
            case ast.IfExp():
                return self.evaluate(node.body if self.evaluate(node.test) else node.orelse)
            case ast.List():
                return [self.evaluate(elt) for elt in node.elts]
            case ast.Tuple():
                return tuple(self.evaluate(elt) for elt in node.elts)
            case ast.Set():
                return {self.evaluate(elt) for elt in node.elts}
            case ast.Dict():
                return {
                    self._optional(k): self.evaluate(v)
                    for k, v in zip(node.keys, node.values, strict=True)
                }
            case ast.Call():
                return self._sized(node, self._call(node))
            case ast.JoinedStr():
                return self._sized(node, "".join(self._fstring_part(part) for part in node.values))
        raise _Fail(node, f"{type(node).__name__} is not supported")  # checked at compile time

    def _optional(self, node: ast.expr | None) -> Any:
        return None if node is None else self.evaluate(node)

    def _name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        if node.id in _ALIASES:
            return _ALIASES[node.id]
        available = sorted(self.names)
        hint = f"available: {_listing(available)}" if available else "no names are available"
        raise _Fail(node, f"name {node.id!r} is not defined", hint + _suggest(node.id, available))

    def _attribute(self, node: ast.Attribute) -> Any:
        value = self.evaluate(node.value)
        if isinstance(value, Mapping):
            return self._key(value, node.attr, node.value, node)
        if node.attr in _UNSAFE_ATTRIBUTES:
            raise _Fail(node, f"attribute {node.attr!r} is not allowed")
        try:
            return getattr(value, node.attr)
        except AttributeError as exc:
            owner = self.text.segment(node.value)
            problem = f"{owner!r} ({type(value).__name__}) has no attribute {node.attr!r}"
            raise _Fail(node, problem) from exc

    def _key(self, mapping: Mapping[Any, Any], key: Any, owner: ast.expr, node: ast.expr) -> Any:
        try:
            return mapping[key]
        except KeyError as exc:
            keys = [k for k in mapping if isinstance(k, str)]
            hint = f"keys: {_listing(sorted(keys))}" if keys else "it has no string keys"
            if isinstance(key, str):
                hint += _suggest(key, keys)
            problem = f"key {key!r} not found in {self.text.segment(owner)!r}"
            raise _Fail(node, problem, hint) from exc

    def _subscript(self, node: ast.Subscript) -> Any:
        value = self.evaluate(node.value)
        key = self.evaluate(node.slice)
        if isinstance(value, Mapping):
            return self._key(value, key, node.value, node)
        try:
            return value[key]
        except IndexError as exc:
            owner = self.text.segment(node.value)
            size = f" (length {len(value)})" if isinstance(value, Sized) else ""
            raise _Fail(node, f"index {key!r} is out of range for {owner!r}{size}") from exc

    def _bool_op(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for operand in node.values:
            result = self.evaluate(operand)
            if bool(result) == isinstance(node.op, ast.Or):
                return result
        return result

    def _compare(self, node: ast.Compare) -> bool:
        left = self.evaluate(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.evaluate(comparator)
            if not _COMPARE_OPS[type(op)](left, right):
                return False
            left = right
        return True

    def _bin_op(self, node: ast.BinOp) -> Any:
        left, right = self.evaluate(node.left), self.evaluate(node.right)
        symbol, apply = _BINARY_OPS[type(node.op)]
        _guard_binary(node, symbol, left, right)
        return apply(left, right)

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        args = [self.evaluate(arg) for arg in node.args]
        kwargs = {str(kw.arg): self.evaluate(kw.value) for kw in node.keywords}
        if isinstance(func, ast.Name):
            return _FUNCTIONS[func.id](*args, **kwargs)
        assert isinstance(func, ast.Attribute)  # checked at compile time
        receiver = self.evaluate(func.value)
        if not isinstance(receiver, str):
            owner = self.text.segment(func.value)
            kind = type(receiver).__name__
            raise _Fail(node, f".{func.attr}() works only on strings; {owner!r} is of type {kind}")
        if func.attr == "replace":
            _guard_replace(node, receiver, args)
        return getattr(receiver, func.attr)(*args, **kwargs)

    def _fstring_part(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        assert isinstance(node, ast.FormattedValue)  # checked at compile time
        value = self.evaluate(node.value)
        if node.conversion != -1:
            value = _CONVERSIONS[node.conversion](value)
        spec = node.format_spec  # only constants, checked at compile time
        parts = spec.values if isinstance(spec, ast.JoinedStr) else []
        return format(value, "".join(self._fstring_part(part) for part in parts))

    def _sized(self, node: ast.expr, value: Any) -> Any:
        if isinstance(value, _SIZED_RESULTS) and len(value) > MAX_LENGTH:
            raise _Fail(
                node, f"the result is too long: {len(value):,} items (limit {MAX_LENGTH:,})"
            )
        if _bits(value) > MAX_INT_BITS:
            raise _Fail(node, f"the result is too large: more than {MAX_INT_BITS:,} bits")
        return value


# --- resource guards --------------------------------------------------------------------


def _too_long(node: ast.expr, length: int) -> NoReturn:
    raise _Fail(node, f"the result would be too long: {length:,} items (limit {MAX_LENGTH:,})")


def _too_large(node: ast.expr) -> NoReturn:
    raise _Fail(node, f"the result would be too large: more than {MAX_INT_BITS:,} bits")


def _length(value: Any) -> int:
    """The length of a string, bytes, list or tuple; 0 for anything else."""
    return len(value) if isinstance(value, _SEQUENCE_TYPES) else 0


def _bits(value: Any) -> int:
    """The size of an int in bits; 0 for anything else."""
    return value.bit_length() if isinstance(value, int) else 0


def _guard_binary(node: ast.expr, symbol: str, left: Any, right: Any) -> None:
    """Refuse an operation before it builds something huge."""
    if symbol == "**":
        _guard_power(node, left, right)
    elif symbol == "*":
        _guard_multiply(node, left, right)
    elif (
        symbol == "+" and type(left) is type(right) and _length(left) + _length(right) > MAX_LENGTH
    ):
        _too_long(node, _length(left) + _length(right))
    elif symbol == "%" and isinstance(left, (str, bytes)):
        raise _Fail(node, "'%' string formatting is not allowed", "use an f-string or +")


def _guard_power(node: ast.expr, base: Any, exponent: Any) -> None:
    if isinstance(exponent, _NUMBER_TYPES) and abs(exponent) > MAX_EXPONENT:
        raise _Fail(node, f"the exponent {exponent!r} is too large (limit {MAX_EXPONENT:,})")
    positive = exponent if isinstance(exponent, int) and exponent > 0 else 0
    if _bits(base) * positive > MAX_INT_BITS:
        _too_large(node)


def _guard_multiply(node: ast.expr, left: Any, right: Any) -> None:
    for sequence, count in ((left, right), (right, left)):
        length = _length(sequence) * (count if isinstance(count, int) else 0)
        if length > MAX_LENGTH:
            _too_long(node, length)
    if _bits(left) + _bits(right) > MAX_INT_BITS:
        _too_large(node)


def _guard_replace(node: ast.expr, text: str, args: list[Any]) -> None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = text.count(args[0])
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        length = len(text) + count * (len(args[1]) - len(args[0]))
        if length > MAX_LENGTH:
            _too_long(node, length)


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise ValueError(f"ndigits {ndigits} is too large (limit {MAX_EXPONENT:,})")
    return round(number) if ndigits is None else round(number, ndigits)


def _sum(items: Iterable[Any], start: Any = 0) -> Any:
    if isinstance(start, _NUMBER_TYPES):
        return sum(items, start)
    total = start
    for item in items:  # sequences: add one by one so the length guard applies
        if _length(total) + _length(item) > MAX_LENGTH:
            raise ValueError(f"the sum would be longer than {MAX_LENGTH:,} items")
        total = total + item
    return total


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": sorted,
}


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
