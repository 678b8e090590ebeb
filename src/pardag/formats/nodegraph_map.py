"""Mapped nodes of node-graph files: ``data.forEach`` names the node whose output, a list, the
node runs over, one instance ``ID[k]`` per item, as ``for_each:`` does in a steps file.

Spelling. The reader already takes both spellings of a data key editors write in camelCase
(``actionType`` / ``action_type``), so each field here has both, in either dialect:
``forEach`` / ``for_each``, ``maxConcurrency`` / ``max_concurrency`` and ``maxItems`` /
``max_items``. They are taken out of the node's data, so its kind never sees them.

The source is a node id (a string or a number, as ids are; its step id works too) or a lone
``"{{ steps.ID.output }}"`` / ``"{{ ID }}"``, the forms node templates read an input by. A node
reads only the nodes with an edge into it, so the source needs an edge into the mapped node:
a missing one is a problem naming both, not a dependency added behind the drawing's back.

A node whose templates read ``{{ item }}`` can be mapped (``pardag.validate.mappable``: text,
number, http, delay and shell nodes); any other is refused at its ``forEach`` with the
reason. ``{{ item }}`` in a node that is not mapped is a problem too.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pardag.formats.native_checks import show
from pardag.formats.reading import Reader
from pardag.kinds import KINDS
from pardag.reads import template_reads
from pardag.templates import ITEM_NAMES
from pardag.validate import mappable

__all__ = ["NodeMap", "item_problems", "map_options", "take_map"]

SPELLINGS: dict[str, tuple[str, str]] = {
    "for_each": ("forEach", "for_each"),
    "map_concurrency": ("maxConcurrency", "max_concurrency"),
    "max_items": ("maxItems", "max_items"),
}
"""Each map field of the model, and the two data keys a node may give it as."""

_STATE = (
    "it changes the run's shared variables, counters or cache, which instances running side "
    "by side would change in no set order"
)
_INPUTS = (
    "it computes from its inputs, and an instance's item is not one of them (only templates "
    "read it, as {{ item }})"
)
_REASONS = {
    "condition": "a condition picks one branch for the whole run, not one per item",
    "merge": "a merge joins branches; map a node before it",
    "trigger": "a trigger starts the flow",
    **dict.fromkeys(("variable", "counter", "accumulator", "cache", "context", "constant"), _STATE),
    **dict.fromkeys(("operation", "text_operation", "extract", "visualization"), _INPUTS),
}
"""Why a node kind cannot be mapped; other kinds that cannot: their templates lack the item."""

_REFERENCE = re.compile(
    r"\s*\{\{\s*(?:steps\.(?P<ref>[A-Za-z0-9_.-]+?)\.output|(?P<name>[A-Za-z_]\w*))\s*\}\}\s*"
)
"""A ``forEach`` that is a lone reference to one node's output."""


@dataclass(frozen=True, slots=True)
class NodeMap:
    """A node's map as written: the node it names (an id, resolved once every node is read),
    the data key it was given under (for its line) and its limits."""

    names: str
    key: str
    map_concurrency: int | None = None
    max_items: int | None = None


def take_map(
    reader: Reader, i: int, sid: str, node_type: str, kind: str, data: dict[str, Any]
) -> NodeMap | None:
    """The map of node ``i``, its fields taken out of ``data``; None when it is not mapped or a
    field is wrong (each wrong field a problem at its key)."""
    given: dict[str, tuple[str, Any]] = {}
    for field, spellings in SPELLINGS.items():
        found = [(key, data.pop(key)) for key in spellings if key in data]
        if len(found) > 1:
            reader.problem(
                f"data gives both {spellings[0]} and {spellings[1]}; keep one",
                *_at(i, spellings[1]),
                step=sid,
            )
        if found:
            given[field] = found[0]
    if "for_each" not in given:
        for key, _ in given.values():
            reader.problem(
                f"data.{key} applies to a mapped node only; add data.forEach (the node whose "
                "output is the list) or remove it",
                *_at(i, key),
                step=sid,
            )
        return None
    key, value = given.pop("for_each")
    names = _source(value)
    if names is None:
        reader.problem(
            f'data.{key} must be a node id or "{{{{ steps.ID.output }}}}" (the node whose output '
            f"is the list), got {show(value)}",
            *_at(i, key),
            step=sid,
        )
    if not mappable(kind):
        reason = _REASONS.get(kind, "its templates cannot read the item")
        reader.problem(
            f"a {node_type!r} node cannot be mapped: {reason}. Remove data.{key}, or map a node "
            "whose data reads {{ item }} (a text, number, http, delay or shell node) or a code "
            "node (its run(inputs) gets inputs['item'])",
            *_at(i, key),
            step=sid,
        )
        names = None
    limits = {field: _limit(reader, i, sid, *given[field]) for field in given}
    if names is None or any(v is None for v in limits.values()):
        return None
    return NodeMap(names, key, **limits)


def _source(value: Any) -> str | None:
    """The id a ``forEach`` value names, or None if it names none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    found = _REFERENCE.fullmatch(value)
    if found is not None:
        return found.group("ref") or found.group("name")
    return None if "{{" in value or "{%" in value else value


def _limit(reader: Reader, i: int, sid: str, key: str, value: Any) -> int | None:
    if type(value) is int and value >= 1:
        return value
    reader.problem(f"data.{key} must be an integer >= 1, got {show(value)}", *_at(i, key), step=sid)
    return None


def map_options(
    reader: Reader,
    i: int,
    node_id: str,
    mapped: NodeMap,
    ids: Mapping[str, str],
    steps: Mapping[str, str],
    sources: Collection[str],
) -> dict[str, Any] | None:
    """The model's map options of node ``node_id``, its source resolved: ``ids`` are the node
    ids of the file by step id (broken nodes' too), ``steps`` the step ids of the nodes that
    read well by node id, ``sources`` the nodes with an edge into it. None after a problem
    (or when the source is a broken node, which has its own)."""
    sid, at, nodes = steps[node_id], _at(i, mapped.key), set(ids.values())
    source = mapped.names if mapped.names in nodes else ids.get(mapped.names)
    if source is None:
        close = difflib.get_close_matches(mapped.names, sorted(nodes), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "name the node whose output is the list"
        reader.problem(
            f"data.{mapped.key} names {mapped.names!r}, which is not a node id; {hint}",
            *at,
            step=sid,
        )
        return None
    if source == node_id:
        reader.problem(
            f"data.{mapped.key}: node {node_id!r} cannot map over itself; name the node whose "
            "output is the list",
            *at,
            step=sid,
        )
        return None
    if source not in steps:
        return None  # a broken node: it has its own problem
    if source not in sources:
        edge = json.dumps({"source": source, "target": node_id})
        reader.problem(
            f"node {node_id!r} maps over {source!r} (data.{mapped.key}), but no edge goes from "
            f"{source!r} to {node_id!r}, and a node reads only the nodes with an edge into it; "
            f"add {edge} to edges",
            *at,
            step=sid,
        )
        return None
    options = {"map_over": steps[source], "map_concurrency": mapped.map_concurrency}
    return {**options, "max_items": mapped.max_items}


def item_problems(
    reader: Reader, i: int, sid: str, kind: str, data: Mapping[str, Any], inputs: Collection[str]
) -> None:
    """``{{ item }}`` in the data of node ``i``, which is not mapped: a problem at its key
    (validation checks the fields of kinds that list their template names, shell and http)."""
    if hasattr(KINDS.get(kind), "template_names"):
        return
    for key, value in data.items():
        if not _mentions_item(value):  # most nodes: no template to parse
            continue
        for name in sorted((template_reads(value).names & ITEM_NAMES) - set(inputs)):
            reader.problem(
                f"data.{key} reads {name!r}, which only a mapped node's templates have (one "
                "instance per item of a list); map this node with data.forEach naming the node "
                "whose output is the list",
                *_at(i, key),
                step=sid,
            )


def _mentions_item(value: Any) -> bool:
    if isinstance(value, str):
        return "item" in value
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list) and any(_mentions_item(v) for v in value)


def _at(i: int, key: str) -> tuple[str | int, ...]:
    return ("nodes", i, "data", key)
