"""Node-graph JSON, as visual editors save it: ``{"nodes": [...], "edges": [...]}``.

A node is ``{"id", "type"?, "data"}``: it becomes one step whose id is the node's id, whose kind
comes from ``type`` (or, without one, from the keys of ``data``) and whose ``params`` are its
``data``. An edge ``{"source", "target", "sourceHandle"?}`` makes the target depend on the
source; a node's inputs are its sources' outputs in the order of the edges array, and several
edges between the same two nodes count once (every node runs once). An edge leaving a
``condition`` node through the handle ``"true"`` or ``"false"`` puts its target on that branch.
Editor keys such as ``position``, ``width``, ``targetHandle`` or ``viewport`` are ignored.
A node's ``data.forEach`` maps it over another node's output list (``nodegraph_map``).

Two dialects are written, and each runs as its engine does (:func:`editor_dialect`): files of
the visual editors (a ``trigger*`` node, ``action`` or ``control-*`` types) run every branch
to its end when one fails (``on_failure`` ``continue``: a sibling's failure does not cancel
an HTTP request mid-way), then fail naming the step; files whose node types are inferred from
``data`` stay fail-fast. An ``execution:`` section (the native format's) overrides either, and
so does any layer above pardag's defaults (``Workflow.format_settings``).

Node ids may be any string or number; characters a step id cannot hold (anything but letters,
digits, ``_``, ``.`` and ``-``) are replaced by ``_`` (:func:`step_id`), and two nodes that end
up with the same step id are a problem. Every problem of the file is reported at once with its
line, then the workflow is validated (cycles, each kind's data checks), with lines too.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pardag.errors import ArgumentError, CycleError, ValidationError
from pardag.formats.document import Document
from pardag.formats.native_checks import MISSING, Checks
from pardag.formats.native_execution import read_execution
from pardag.formats.nodegraph_map import NodeMap, item_problems, map_options, take_map
from pardag.formats.reading import Reader
from pardag.kinds import KINDS
from pardag.kinds.nodegraph import condition_function
from pardag.model import Workflow
from pardag.states import OnFailure
from pardag.triggers import TriggerSpec, from_node, twice

__all__ = [
    "NODE_TYPES",
    "detect",
    "editor_dialect",
    "infer_type",
    "read",
    "step_id",
]

NODE_TYPES: dict[str, str] = {
    "number": "number",
    "number_input": "number",
    "text": "text",
    "text_input": "text",
    "visualization": "visualization",
    "operation": "operation",
    "text_operation": "text_operation",
    "variable": "variable",
    "extract": "extract",
    "counter": "counter",
    "accumulator": "accumulator",
    "cache": "cache",
    "context": "context",
    "context_variable": "context",
    "constant": "constant",
    "condition": "condition",
    "http": "http_node",
    "action": "http_node",  # with data.actionType "http", the one action type pardag runs
    "delay": "delay_node",
    "control_delay": "delay_node",
    "merge": "merge",
    "control_merge": "merge",
    "trigger": "trigger",
    "manual": "trigger",
}
"""Node types (after :func:`normal_type`) and the step kind each becomes; ``trigger-*`` types
are triggers, and the name of any registered kind (``shell``, ...) is that kind."""

INFERRED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("context_name", "context_value"), "context"),
    (("const_name", "const_value"), "constant"),
    (("var_name", "var_op"), "variable"),
    (("cache_op", "cache_key"), "cache"),
    (("counter_op",), "counter"),
    (("accum_op",), "accumulator"),
    (("text_op",), "text_operation"),
    (("op",), "operation"),
    (("condition",), "condition"),
    (("url",), "http"),
    (("duration",), "delay"),
    (("field",), "extract"),
    (("fields",), "extract"),
    (("mode",), "visualization"),
    (("text",), "text"),
    (("value",), "number"),
)
"""The data keys that give a node without ``type`` its type, tried in this order."""

_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_HANDLES = ("true", "false")


def step_id(node_id: str) -> str:
    """The step id of a node: its id, with each run of other characters replaced by ``_``."""
    return node_id if _ID_PATTERN.fullmatch(node_id) else _BAD_ID_CHARS.sub("_", node_id)


def normal_type(name: str) -> str:
    """The type as snake case: ``textOperation``, ``text-operation`` -> ``text_operation``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[\s-]+", "_", snake).lower()


def infer_type(data: Mapping[str, Any]) -> str | None:
    """The node type ``data``'s keys name (see ``INFERRED``), or None."""
    for keys, node_type in INFERRED:
        if all(k in data for k in keys):
            return node_type
    return None


def editor_dialect(nodes: list[Any]) -> bool:
    """Whether a graph is a visual editor's: a node of type ``trigger*``, ``action`` or
    ``control-*`` (the other dialect leaves ``type`` out, or names the computing nodes)."""
    for node in nodes:
        kind = node.get("type") if isinstance(node, dict) else None
        if isinstance(kind, str):
            name = normal_type(kind)
            if name.startswith(("trigger", "control_")) or name == "action":
                return True
    return False


def detect(doc: Document) -> bool:
    """A node graph: a mapping with a ``nodes`` list and an ``edges`` list.

    A mapping with only one of the two keys (and no ``steps`` or ``tasks``) counts too, so that
    a half-written graph gets node-graph messages rather than "not a workflow".
    """
    data = doc.data
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("nodes"), list) and isinstance(data.get("edges"), list):
        return True
    return ("nodes" in data or "edges" in data) and not ("steps" in data or "tasks" in data)


def read(doc: Document, defaults: Mapping[str, Any]) -> Workflow:
    """The workflow in ``doc``, validated; raises ``ValidationError`` with every problem.

    ``defaults`` (settings from below the file) are not needed to validate: a node graph
    declares no pools, and ``read_workflow`` applies them to the result (where the file's
    ``execution:`` does not set them).
    """
    return _Reader(doc).read()


@dataclass
class _Node:
    """A node that read well: where it is and the step it becomes."""

    index: int
    node_id: str
    step_id: str
    kind: str
    params: dict[str, Any]
    fn: Callable[..., Any] | None = None
    sources: dict[str, list[str | None]] = field(default_factory=dict)  # source: handles
    mapped: NodeMap | None = None  # data.forEach (``nodegraph_map``)


class _Reader(Reader):
    """Reads a node graph: nodes first (``seen`` keeps even broken ones), then edges."""

    def __init__(self, doc: Document) -> None:
        super().__init__(doc)
        self.nodes: dict[str, _Node] = {}  # by node id
        self.seen: dict[str, int] = {}  # every node id, broken or not: its index
        self.steps: dict[str, str] = {}  # step id: node id
        self.flagged: set[str] = set()  # step ids with a map problem: the model's go unsaid
        self.triggers: list[TriggerSpec] = []  # what trigger-webhook/-schedule nodes declare

    def read(self) -> Workflow:
        data = self.doc.data
        if not isinstance(data, dict):
            got = type(data).__name__
            self.fail(
                f'a node graph is a JSON object {{"nodes": [...], "edges": [...]}}, got {got}'
            )
        nodes, edges = self.list(data, "nodes"), self.list(data, "edges")
        for i, raw in enumerate(nodes):
            self.node(i, raw)
        for j, raw in enumerate(edges):
            self.edge(j, raw)
        wf = self.workflow(data, nodes)
        wf.triggers = tuple(self.triggers)
        self.problems += [self.doc.problem(message, "nodes") for message in twice(self.triggers)]
        for node in self.nodes.values():
            self.add(wf, node)
        self.validate(wf)
        return wf

    def workflow(self, data: Mapping[str, Any], nodes: list[Any]) -> Workflow:
        """The empty workflow, with the file's ``execution:`` and its dialect's defaults."""
        checks = Checks(self.doc)
        settings = read_execution(checks, data.get("execution", MISSING))
        self.problems += checks.problems
        wf = Workflow(self.name(data), **settings)
        wf.source = self.doc.path
        wf.file_settings = dict(settings)
        wf.definition_format = f"nodegraph:{self.doc.format}"  # the fixes validation suggests
        if editor_dialect(nodes) and "on_failure" not in settings:
            # as the editors' backends run: every branch to its end, then the failed node
            wf.settings.on_failure = OnFailure.CONTINUE
            wf.format_settings = {"on_failure": OnFailure.CONTINUE.value}
        return wf

    def list(self, data: Mapping[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if isinstance(value, list):
            if key == "nodes" and not value:
                self.problem("'nodes' is empty; add at least one node", key)
            return value
        if key not in data:
            fix = (
                "add the nodes" if key == "nodes" else 'write "edges": [] for a graph without edges'
            )
            article = "a" if key == "nodes" else "an"
            self.problem(f"a node graph needs {article} {key!r} list; {fix}")
        else:
            self.problem(f"{key!r} must be a list, got {type(value).__name__}", key)
        return []

    def name(self, data: Mapping[str, Any]) -> str:
        name = data.get("name")
        if isinstance(name, str) and name.strip():
            return name
        return Path(self.doc.path).stem

    # -- nodes ------------------------------------------------------------------------------

    def node(self, i: int, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.problem(
                f"node {i} must be an object with an id, got {type(raw).__name__}", "nodes", i
            )
            return
        node_id = self.node_id(i, raw)
        if node_id is None:
            return
        data = raw.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(
                f"data must be an object of the node's settings, got {type(data).__name__}",
                "nodes",
                i,
                "data",
                step=step_id(node_id),
            )
            return
        resolved = self.kind_of(i, node_id, raw.get("type"), data)
        if resolved is None:
            return
        kind, fn = resolved
        sid, params, found = step_id(node_id), dict(data), len(self.problems)
        if kind == "trigger":
            self.trigger(i, raw.get("type"), data, sid)
        written = raw.get("type") or infer_type(data)
        mapped = take_map(self, i, sid, str(written), kind, params)
        if len(self.problems) > found:
            self.flagged.add(sid)
        self.nodes[node_id] = _Node(i, node_id, sid, kind, params, fn, mapped=mapped)

    def trigger(self, i: int, node_type: Any, data: Mapping[str, Any], sid: str) -> None:
        """Keep what a ``trigger-webhook`` / ``trigger-schedule`` node declares."""
        spec, wrong = from_node(normal_type(str(node_type or "")), data, sid)
        for where, message in wrong:
            self.problem(message, "nodes", i, "data", *where, step=sid)
        if spec is not None:
            self.triggers.append(spec)

    def node_id(self, i: int, raw: Mapping[str, Any]) -> str | None:
        """The node's id, if usable and not taken (by a node or, once mapped, a step)."""
        value = raw.get("id")
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            got = "nothing" if "id" not in raw else repr(value)
            self.problem(f"node {i} needs an id, a non-empty string; got {got}", "nodes", i)
            return None
        node_id = str(value)
        if node_id in self.seen:
            other = self.doc.where("nodes", self.seen[node_id])
            self.problem(
                f"node id {node_id!r} is used twice (also at {other}); give each node its own id",
                "nodes",
                i,
            )
            return None
        self.seen[node_id] = i
        sid = step_id(node_id)
        taken = self.steps.get(sid)
        if taken is not None:
            self.problem(
                f"node {node_id!r} would run as step {sid!r}, as node {taken!r} does "
                f"({self.doc.where('nodes', self.seen[taken])}); rename one of them",
                "nodes",
                i,
            )
            return None
        self.steps[sid] = node_id
        return node_id

    def kind_of(
        self, i: int, node_id: str, node_type: Any, data: Mapping[str, Any]
    ) -> tuple[str, Callable[..., Any] | None] | None:
        """The step kind (and, for a condition, its function) or None after a problem."""
        sid = step_id(node_id)
        if node_type is None or node_type == "":
            node_type = infer_type(data)
            if node_type is None:
                self.problem(_uninferable(node_id, data), "nodes", i, step=sid)
                return None
        if not isinstance(node_type, str):
            self.problem(f"type must be a string, got {node_type!r}", "nodes", i, "type", step=sid)
            return None
        kind = _kind(node_type, data)
        if kind is None:
            self.problem(_unknown_type(node_type, data), "nodes", i, "type", step=sid)
            return None
        if kind != "condition":
            return kind, None
        key = "condition" if "condition" in data else "expression"
        source = data.get(key)
        if not isinstance(source, str):
            self.problem(
                'a condition node needs data.condition, an expression such as "trigger.amount > '
                '100" (the trigger data is trigger, inputs are read by their node id)',
                "nodes",
                i,
                step=sid,
            )
            return None
        try:
            return kind, condition_function(source, f"data.{key}")
        except ArgumentError as exc:
            self.problem(str(exc), "nodes", i, "data", key, step=sid)
            return None

    # -- edges ------------------------------------------------------------------------------

    def edge(self, j: int, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.problem(
                f"edge {j} must be an object with source and target, got {type(raw).__name__}",
                "edges",
                j,
            )
            return
        ends = [self.end(j, raw, key) for key in ("source", "target")]
        source, target = ends
        if source is None or target is None:
            return
        if source == target:
            self.problem(f"edge {j} connects node {source!r} to itself; remove it", "edges", j)
            return
        if source not in self.nodes or target not in self.nodes:
            return  # a broken node: it has its own problem
        handle = self.handle(j, raw, self.nodes[source])
        if handle is not None:
            self.nodes[target].sources.setdefault(source, []).append(handle[0])

    def end(self, j: int, raw: Mapping[str, Any], key: str) -> str | None:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            got = "nothing" if key not in raw else repr(value)
            self.problem(f"edge {j} needs a {key}, the id of a node; got {got}", "edges", j)
            return None
        node_id = str(value)
        if node_id not in self.seen:
            close = _close(node_id, list(self.seen))
            hint = f"did you mean {close[0]!r}?" if close else "add that node or fix the id"
            self.problem(f"edge {j}: {key} {node_id!r} is not a node id; {hint}", "edges", j, key)
            return None
        return node_id

    def handle(self, j: int, raw: Mapping[str, Any], source: _Node) -> tuple[str | None] | None:
        """``(branch,)``: the handle an edge from a condition takes ('true'/'false'), or None
        for no branch; None after a problem. Handles of edges from other nodes are ignored."""
        value = raw.get("sourceHandle")
        if source.kind != "condition" or value is None:
            return (None,)
        handle = ("true" if value else "false") if isinstance(value, bool) else value
        if handle in _HANDLES:
            return (str(handle),)
        self.problem(
            f"edge {j}: sourceHandle {value!r} of condition {source.node_id!r} must be 'true' "
            "or 'false' (or left out, to run after the condition whatever it chose)",
            "edges",
            j,
            "sourceHandle",
        )
        return None

    # -- the workflow -----------------------------------------------------------------------

    def add(self, wf: Workflow, node: _Node) -> None:
        deps = [self.nodes[s].step_id for s in node.sources]
        branch = {}
        for source, handles in node.sources.items():
            if None not in handles and len(set(handles)) == 1:
                branch[self.nodes[source].step_id] = str(handles[0])
        options: dict[str, Any] = {"kind": node.kind, "params": node.params}
        if branch:
            options["branch"] = branch
        if node.fn is not None:
            options["executor"] = "inline"
        options.update(self.mapping(node, deps))
        wf.add(node.step_id, node.fn, depends_on=deps, **options)
        wf.locations[node.step_id] = self.doc.where("nodes", node.index)

    def mapping(self, node: _Node, inputs: Collection[str]) -> dict[str, Any]:
        """The model's map options of ``node`` (none for a node that is not mapped, or after
        a problem); ``{{ item }}`` in a node that is not mapped is a problem."""
        if node.mapped is None:
            if node.step_id not in self.flagged:
                item_problems(self, node.index, node.step_id, node.kind, node.params, inputs)
            return {}
        found = map_options(
            self, node.index, node.node_id, node.mapped, self.steps, self.good, node.sources
        )
        if found is None:
            self.flagged.add(node.step_id)
        return found or {}

    @functools.cached_property
    def good(self) -> dict[str, str]:
        """The step id of each node that read well, by node id (once every node is read)."""
        return {n.node_id: n.step_id for n in self.nodes.values()}

    def validate(self, wf: Workflow) -> None:
        """Raise the file's problems and the model's (for the nodes that read well) together."""
        try:
            wf.validate()
        except CycleError as exc:
            if not self.problems:
                raise CycleError(self.doc.path, exc.problems, exc.cycle) from None
            self.problems += exc.problems
        except ValidationError as exc:
            self.problems += [p for p in exc.problems if p.step not in self.flagged]
        if self.problems:
            raise ValidationError(self.doc.path, self.problems)


def _close(word: str, candidates: list[str]) -> list[str]:
    """The closest candidate, as a list of at most one (none for huge graphs: too slow)."""
    return difflib.get_close_matches(word, candidates, n=1) if len(candidates) < 20_000 else []


def _kind(node_type: str, data: Mapping[str, Any]) -> str | None:
    """The step kind of a node type, or None when the type is unknown."""
    name = normal_type(node_type)
    if name.startswith("trigger_"):
        return "trigger"
    if name == "action":
        action = data.get("actionType", data.get("action_type"))
        return "http_node" if isinstance(action, str) and action.lower() == "http" else None
    kind = NODE_TYPES.get(name)
    if kind is not None:
        return kind
    return node_type if node_type in KINDS else None


_ALIASES = frozenset({"number_input", "text_input", "context_variable", "http_node", "delay_node"})


def _known_types() -> str:
    """The node types to suggest: the canonical ones and every registered kind."""
    names = {*NODE_TYPES, "trigger-*", *KINDS} - _ALIASES
    return ", ".join(sorted(n.replace("_", "-") if n.startswith("control_") else n for n in names))


def _unknown_type(node_type: str, data: Mapping[str, Any]) -> str:
    if normal_type(node_type) == "action":
        got = data.get("actionType", data.get("action_type"))
        return (
            f"an action node runs data.actionType 'http', the only action pardag knows; got {got!r}"
        )
    close = _close(normal_type(node_type), list(NODE_TYPES))
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"node type {node_type!r} is unknown{hint}; use one of: {_known_types()}; or leave "
        "type out to infer it from data"
    )


def _uninferable(node_id: str, data: Mapping[str, Any]) -> str:
    keys = ", ".join(sorted(map(str, data))) or "none"
    partial = [
        f"{present[0]!r} needs {missing[0]!r} too"
        for keys_needed, _ in INFERRED
        if len(keys_needed) > 1
        for present, missing in [
            ([k for k in keys_needed if k in data], [k for k in keys_needed if k not in data])
        ]
        if present and missing
    ]
    hints = "".join(f"; {p}" for p in partial)
    known = ", ".join(f"{'+'.join(k)} ({t})" for k, t in INFERRED)
    return (
        f"node {node_id!r} has no type and its data keys ({keys}) name none{hints}. Add "
        f'"type", or give data the keys of one type: {known}'
    )
