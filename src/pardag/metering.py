"""Jinja2 compiled so that rendering charges its budget (:mod:`pardag.budget`) as it goes.

Jinja2 turns a template into Python code; loops in it are plain Python ``for`` loops that no
sandbox hook sees. :class:`MeteredCodeGenerator` writes four things differently:

* every ``{% for %}`` body starts with ``environment.tick()`` (one operation an iteration,
  recursive loops included), and a loop's ``if`` filter charges one per item it tests;
* ``a ~ b`` calls ``environment.joined((a, b))``, which refuses a result over the length
  limit before building it (``s ~ s`` in a loop doubled until memory ran out);
* ``[a, b]``, ``(a, b)`` and ``{k: v}`` (when read, not assigned to) call
  ``environment.built(...)``, which weighs the value by what it writes out;
* nothing else: calls, filters, tests and operators are charged by the sandbox's hooks.

:class:`MeteredFormatter` is ``str.format``'s formatter, refusing once the fields it formatted
add up to more than ``limit`` characters (``('{0}' * 100000).format(text)``), and a field whose
value would write out more than that (``'{}'.format(d)``, ``d`` sharing items).
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter

from pardag import budget

__all__ = [
    "MeteredCodeGenerator",
    "MeteredEscapeFormatter",
    "MeteredFormatter",
    "too_long",
]


def too_long(length: int, limit: int) -> SecurityError:
    """The refusal of a value ``length`` long, past ``limit``."""
    return SecurityError(f"the result would be too long: {length:,} items (limit {limit:,})")


class MeteredCodeGenerator(CodeGenerator):
    """Jinja2's code generator, with loops, ``~`` and literals charging the render's budget.

    Jinja2 allows no node types of its own, so the nodes it adds to a loop are marked ones of
    Jinja2's: a statement that compiles to ``environment.tick()`` and a call that compiles to
    ``environment.charged(test)``.
    """

    def _mark(self, node: nodes.Node) -> Any:
        self.__dict__.setdefault("_marks", {})[id(node)] = node
        return node

    def _marked(self, node: nodes.Node) -> bool:
        return id(node) in self.__dict__.get("_marks", ())

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """The loop, with a tick first in its body and its ``if`` charged per item."""
        line = node.lineno
        body = [self._mark(nodes.ExprStmt(nodes.Const(None), lineno=line)), *node.body]
        test = node.test
        if test is not None:
            charge = nodes.EnvironmentAttribute("charged", lineno=line)
            test = self._mark(nodes.Call(charge, [test], [], None, None, lineno=line))
        metered = nodes.For(
            node.target, node.iter, body, node.else_, test, node.recursive, lineno=line
        )
        super().visit_For(metered, frame)

    def visit_ExprStmt(self, node: nodes.ExprStmt, frame: Frame) -> None:
        if not self._marked(node):
            super().visit_ExprStmt(node, frame)
            return
        self.writeline("environment.tick()", node)

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        if not self._marked(node):
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        self.write("environment.charged(")
        self.visit(node.args[0], frame)
        self.write(")")

    @optimizeconst
    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        """``[a, b]`` as ``environment.built([a, b])``: weighed (``pardag.budget.weigh``)."""
        self._built(super().visit_List, node, frame)

    @optimizeconst
    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._built(super().visit_Tuple, node, frame)

    @optimizeconst
    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._built(super().visit_Dict, node, frame)

    def _built(self, visit: Any, node: nodes.List | nodes.Tuple | nodes.Dict, frame: Frame) -> None:
        """A literal that is read (not a target, as ``a, b`` in ``{% for a, b in ... %}``),
        compiled into ``environment.built(...)``."""
        if getattr(node, "ctx", "load") != "load":
            visit(node, frame)
            return
        self.write("environment.built(")
        visit(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """``a ~ b ~ c`` as ``environment.joined((a, b, c))``."""
        self.write("environment.joined((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class MeteredFormatter(SandboxedFormatter):
    """The sandbox's ``str.format`` formatter, refusing past ``limit`` characters of fields."""

    def __init__(self, env: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.limit, self.total = limit, 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        """``{0!r}``: refused before ``repr`` writes out a value over the limit."""
        return super().convert_field(budget.weighed(value, self.limit, budget.WRITTEN), conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        """One field, counted (its width is checked before: ``pardag.sandbox``)."""
        budget.weighed(value, self.limit, budget.WRITTEN)
        piece = super().format_field(value, format_spec)
        self.total += len(piece)
        if self.total > self.limit:
            raise too_long(self.total, self.limit)
        return piece


class MeteredEscapeFormatter(MeteredFormatter, SandboxedEscapeFormatter):
    """The same, for ``Markup`` text (``'...'|safe``): each field escaped."""
