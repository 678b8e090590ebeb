"""A run as the page first draws it: its steps, its graph and its events up to one number.

The snapshot carries ``seq``, the number of the last event it includes; the page follows the
run's stream from there (``?after=seq``), so nothing is missed between the HTML and the
stream and nothing is applied twice out of order. The events are read before the steps: a
step may then be newer than ``seq``, and the events after ``seq`` bring it to the same state.

The graph comes from the workflow the run recorded (its file's text). A run of a workflow built
in Python has no file in the store, and the page never imports user code: its graph is the
steps alone, without edges, and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pardag.formats import read_workflow
from pardag.formats.document import parse_document
from pardag.instances import instances_of
from pardag.model import Graph
from pardag.recording import latest_attempts, service_origin
from pardag.server.shapes import event_json, run_json, steps_json
from pardag.server.ui.approvals import Field, fields_of
from pardag.store.base import EventRecord, RunRecord, StepRecord, Store

__all__ = ["RunView", "approval_fields", "compiled_of", "critical_path", "graph_json", "run_view"]

MAX_EVENTS = 20_000
"""Events a snapshot carries for the timeline at most: past it, a big map's instances' events
are left out (their mapped step's own events stay), then the latest are kept."""
NO_GRAPH = "this run's workflow was built in Python: the page shows its steps, not their edges"


@dataclass
class RunView:
    """What the run's page shows, and what its script starts from (``data``)."""

    run: dict[str, Any]
    record: RunRecord
    steps: list[dict[str, Any]]
    instances: dict[str, list[dict[str, Any]]]
    origin: str
    approvals: dict[str, list[Field]] = field(default_factory=dict)
    """Each paused approval step's form inputs."""
    data: dict[str, Any] = field(default_factory=dict)


def run_view(store: Store, record: RunRecord) -> RunView:
    """The snapshot of ``record``: events first, then the steps (see the module's note)."""
    events = store.get_events(record.run_id)
    records = store.get_steps(record.run_id)
    by_id = {s["step"]: s for s in steps_json(records)}
    grouped = instances_of(by_id)  # each mapped step's instances, in item order
    inside = {sid for found in grouped.values() for sid in found}
    top = [s for sid, s in by_id.items() if sid not in inside]
    instances = {parent: [by_id[sid] for sid in found] for parent, found in grouped.items()}
    compiled = compiled_of(record)
    graph = graph_json(compiled, top)
    if compiled is not None:  # every step of the workflow, those not started yet too
        recorded = {s["step"]: s for s in top}
        top = [recorded.get(sid) or _unstarted(sid) for sid in compiled.ids]
    drawn = _timeline_events(events, inside)
    shown = run_json(record)
    data = {
        "run": shown,
        "seq": events[-1].seq if events else 0,
        "graph": graph,
        "note": None if compiled else NO_GRAPH,
        "steps": {s["step"]: s for s in top},
        "instances": {p: [[i["step"], i["state"]] for i in got] for p, got in instances.items()},
        "events": drawn,
        "events_left_out": len(events) - len(drawn),
        "now": time.time(),
    }
    graph["critical"] = critical_path(compiled, latest_attempts(records))
    origin = service_origin(record) or "command line"
    paused = [sid for sid, s in by_id.items() if s["state"] == "paused"]
    forms = {sid: f for sid in paused if (f := approval_fields(compiled, sid)) is not None}
    return RunView(shown, record, top, instances, origin, forms, data)


def _timeline_events(events: list[EventRecord], instances: set[str]) -> list[dict[str, Any]]:
    """The events the timeline draws: all of them, unless over ``MAX_EVENTS`` (then those
    of the ``instances`` of mapped steps are left out, and the latest kept)."""
    if len(events) > MAX_EVENTS:
        events = [e for e in events if e.step not in instances]
    return [event_json(e) for e in events[-MAX_EVENTS:]]


def _unstarted(step: str) -> dict[str, Any]:
    return {
        "step": step,
        "attempts": 0,
        "state": "pending",
        "reason": None,
        "error": None,
        "started_at": None,
        "finished_at": None,
        "cached": False,
    }


def graph_json(graph: Graph | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's graph as the page's script draws it; without a compiled workflow, the
    recorded ``steps`` as nodes with no edges."""
    if graph is None:
        return {
            "nodes": [{"id": s["step"], "kind": "", "mapped": False} for s in steps],
            "edges": [],
        }
    nodes = [
        {"id": s.id, "kind": s.kind, "mapped": bool(s.map_sources()), "pool": sorted(s.resources)}
        for s in graph.steps
    ]
    edges = [[graph.ids[p], graph.ids[i]] for i, preds in enumerate(graph.preds) for p in preds]
    return {"nodes": nodes, "edges": edges}


def compiled_of(record: RunRecord) -> Graph | None:
    if record.definition_format == "python" or not record.definition:
        return None
    reader, _, syntax = record.definition_format.partition(":")
    try:
        doc = parse_document(record.definition, f"<run {record.run_id}>", syntax or "yaml")
        return read_workflow(doc, reader).compile()
    except Exception:  # a definition an older pardag wrote: the steps alone, as for Python
        return None


def critical_path(graph: Graph | None, latest: dict[str, StepRecord]) -> list[str]:
    """The longest path through the graph by the time its steps took (running ones: so far).

    A step that has not run counts next to nothing, so for a queued run this is the longest
    path by number of steps. It is computed for each snapshot, not kept live."""
    if graph is None:
        return []
    now = time.time()
    return graph.critical_path([_took(latest.get(sid), now) + 1e-6 for sid in graph.ids])


def _took(rec: StepRecord | None, now: float) -> float:
    if rec is None or rec.started_at is None:
        return 0.0
    return (rec.finished_at or now) - rec.started_at


def approval_fields(graph: Graph | None, step: str) -> list[Field] | None:
    """The form's inputs of approval step ``step`` (None: no such approval step)."""
    if graph is None or step not in graph.index:
        return None
    spec = graph.steps[graph.index[step]]
    if spec.kind != "approval":
        return None
    return fields_of(spec.params.get("schema"), spec.params.get("choices"))
