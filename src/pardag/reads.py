"""What a template or an expression reads, found in its parsed tree before anything runs.

A step's templates and expressions read the run through a few names: ``steps.fetch.output``,
``inputs["fetch"]``, ``params.env``, a dependency's id in an expression. Validation checks
those reads against the step's dependencies and the workflow's params (``pardag.validate``),
so that a file naming a step it does not depend on fails before the run, not halfway through.

Only reads written out are found: ``steps.fetch`` and ``steps["fetch"]``; a key computed at
run time (``steps[name]``) is left to the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from pardag.templates import environment, is_template, parse

__all__ = ["Reads", "reads_of", "template_reads"]


@dataclass(frozen=True)
class Reads:
    """The top-level ``names`` read, and ``keys``: (name, key, the key read inside it or
    None), e.g. ``("steps", "fetch", "output")`` for ``steps.fetch.output.rows``."""

    names: frozenset[str] = frozenset()
    keys: frozenset[tuple[str, str, str | None]] = frozenset()

    def __or__(self, other: Reads) -> Reads:
        return Reads(self.names | other.names, self.keys | other.keys)


def reads_of(tree: nodes.Node, names: frozenset[str]) -> Reads:
    """The reads in ``tree`` of ``names`` (the top-level names it does not define itself)."""
    keys: set[tuple[str, str, str | None]] = set()
    inner: set[tuple[str, str]] = set()
    for node in (tree, *tree.find_all((nodes.Getattr, nodes.Getitem))):
        key = _key(node)
        if key is None or not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        first = _first_key(node.node, names)
        if first is not None:
            keys.add((*first, key))
            inner.add(first)
        elif isinstance(node.node, nodes.Name) and node.node.name in names:
            keys.add((node.node.name, key, None))
    keys -= {(name, key, None) for name, key in inner}  # steps.a.output covers steps.a
    return Reads(names, frozenset(keys))


def template_reads(value: Any) -> Reads:
    """The reads of every template string in ``value`` (dicts and lists too); a template
    that does not parse reads nothing here (its syntax error is reported on its own)."""
    if isinstance(value, str):
        if not is_template(value):
            return Reads()
        try:
            tree = parse(value)
        except TemplateSyntaxError:
            return Reads()
        names = frozenset(meta.find_undeclared_variables(tree)) - set(environment().globals)
        return reads_of(tree, names)
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, list | tuple) or isinstance(value, dict):
        out = Reads()
        for item in items:
            out |= template_reads(item)
        return out
    return Reads()


def _key(node: nodes.Node) -> str | None:
    """The key ``node`` reads when it is ``x.key`` or ``x["key"]``."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _first_key(node: nodes.Node, names: frozenset[str]) -> tuple[str, str] | None:
    """(name, key) when ``node`` is ``name.key`` or ``name["key"]`` for one of ``names``."""
    key = _key(node)
    inner = getattr(node, "node", None)
    if key is None or not isinstance(inner, nodes.Name) or inner.name not in names:
        return None
    return inner.name, key
