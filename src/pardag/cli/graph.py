"""``pardag validate`` and ``pardag graph``: check a workflow file, and draw its graph."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from pardag.cli.console import Session, reported
from pardag.cli.loading import prepare
from pardag.cli.options import ConfigOpt, DebugOpt, FileArg
from pardag.errors import ArgumentError
from pardag.model import Graph, Workflow

__all__ = ["GraphFormat", "graph_command", "render_graph", "validate_command"]


class GraphFormat(StrEnum):
    """The ways ``pardag graph`` draws a workflow."""

    MERMAID = "mermaid"
    DOT = "dot"
    LEVELS = "levels"
    ASCII = "ascii"


def validate_command(file: FileArg, config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Check a workflow file and list every problem, with file and line; exit 0 if valid."""
    session = Session(debug)
    with reported(session):
        wf, _ = prepare(file, config)
        graph = wf.compile()
        levels = max(graph.levels(), default=-1) + 1
        typer.echo(f"{file}: valid ({_count(len(graph.ids), 'step')}, {_count(levels, 'level')})")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def graph_command(
    file: FileArg,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="How to draw it.")
    ] = GraphFormat.ASCII,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Draw a workflow's graph as Mermaid, Graphviz dot, levels or an ASCII tree."""
    session = Session(debug)
    with reported(session):
        wf, _ = prepare(file, config)
        typer.echo(render_graph(wf, format.value))


def render_graph(wf: Workflow, format: str) -> str:
    """``wf``'s graph as text: ``mermaid``, ``dot``, ``levels`` or ``ascii``."""
    draw = _RENDERERS.get(format)
    if draw is None:
        raise ArgumentError(f"graph format {format!r} is unknown; use one of {list(_RENDERERS)}")
    return draw(wf, wf.compile())


_MERMAID_WORDS = {"end", "graph", "subgraph", "style", "class", "classdef", "click", "linkstyle"}


def _mermaid(wf: Workflow, g: Graph) -> str:
    """``graph TD`` with a node per step (conditions as diamonds), handles as edge labels."""

    def node(i: int) -> str:
        sid = g.ids[i]
        plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sid) and sid.lower() not in _MERMAID_WORDS
        return sid if plain else f"n{i}"

    lines = ["graph TD"]
    for i, step in enumerate(g.steps):
        shape = '{{"{}"}}' if step.kind == "condition" else '["{}"]'
        lines.append(f"    {node(i)}{shape.format(step.id)}")
    for i, succs in enumerate(g.succs):
        for j in succs:
            handle = g.handles.get((i, j))
            arrow = f"-->|{handle}|" if handle else "-->"
            lines.append(f"    {node(i)} {arrow} {node(j)}")
    return "\n".join(lines)


def _dot(wf: Workflow, g: Graph) -> str:
    """A Graphviz ``digraph``: boxes, conditions as diamonds, handles as edge labels."""
    lines = [f"digraph {_quoted(wf.name)} {{", "    node [shape=box];"]
    for step in g.steps:
        shape = " [shape=diamond]" if step.kind == "condition" else ""
        lines.append(f"    {_quoted(step.id)}{shape};")
    for i, succs in enumerate(g.succs):
        for j in succs:
            handle = g.handles.get((i, j))
            label = f" [label={_quoted(handle)}]" if handle else ""
            lines.append(f"    {_quoted(g.ids[i])} -> {_quoted(g.ids[j])}{label};")
    lines.append("}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _levels(wf: Workflow, g: Graph) -> str:
    """One line per level: the steps whose dependencies all lie in earlier levels."""
    return "\n".join(f"level {n}: {', '.join(ids)}" for n, ids in enumerate(wf.levels()))


def _ascii(wf: Workflow, g: Graph) -> str:
    """A tree from each root; a step reached again says "(see above)", chains share a line."""
    levels = max(g.levels(), default=-1) + 1
    lines = [
        f"{wf.name}: {_count(len(g.ids), 'step')} in {_count(levels, 'level')}; "
        f"critical path {' -> '.join(g.critical_path())}"
    ]
    seen: set[int] = set()
    roots = [i for i in range(len(g.ids)) if not g.preds[i]]
    stack: list[tuple[int, str, str, str | None]] = [(r, "", "", None) for r in reversed(roots)]
    while stack:
        i, lead, child_lead, handle = stack.pop()
        text, last = _chain(g, i, seen)
        label = (f"[{handle}] " if handle else "") + text
        lines.append(lead + label)
        if last is None:
            continue
        kids = g.succs[last]
        for k in reversed(range(len(kids))):
            end = k == len(kids) - 1
            stack.append(
                (
                    kids[k],
                    child_lead + ("`-- " if end else "+-- "),
                    child_lead + ("    " if end else "|   "),
                    g.handles.get((last, kids[k])),
                )
            )
    return "\n".join(lines)


def _chain(g: Graph, i: int, seen: set[int]) -> tuple[str, int | None]:
    """``a -> b -> c`` for a run of steps with one successor each that only it feeds.

    Returns the text and the last step, whose successors come next (None if seen before).
    """
    if i in seen:
        return f"{_name(g, i)} (see above)", None
    parts = []
    while True:
        seen.add(i)
        parts.append(_name(g, i))
        succs = g.succs[i]
        if len(succs) != 1 or len(g.preds[succs[0]]) != 1 or (i, succs[0]) in g.handles:
            return " -> ".join(parts), i
        i = succs[0]


def _name(g: Graph, i: int) -> str:
    """The step's id, with its kind for the steps that steer the flow."""
    kind = g.steps[i].kind
    return f"{g.ids[i]} ({kind})" if kind in ("condition", "merge") else g.ids[i]


_RENDERERS: dict[str, Callable[[Workflow, Graph], str]] = {
    "mermaid": _mermaid,
    "dot": _dot,
    "levels": _levels,
    "ascii": _ascii,
}
