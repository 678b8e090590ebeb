"""What the API answers with: runs, steps, events and workflows as JSON objects.

Records of the store become plain dictionaries here, their ``*_json`` text decoded, so that a
client reads one JSON document. Nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any

from pardag.recording import latest_attempts
from pardag.store.base import EventRecord, RunRecord, StepRecord
from pardag.store.tenancy import StoredWorkflow

__all__ = ["attempt_json", "event_json", "run_json", "step_json", "steps_json", "workflow_json"]


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _picked(record: object, names: str) -> dict[str, Any]:
    """The fields ``names`` (space-separated) of ``record``, under their own names."""
    return {name: getattr(record, name) for name in names.split()}


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run without its definition (``GET /api/workflows/{id}`` has that)."""
    return {
        "id": run.run_id,
        **_picked(run, "workflow status org created_at finished_at error"),
        "params": _decoded(run.params_json),
        "trigger_data": _decoded(run.trigger_json),
        **_picked(run, "worker claims"),
    }


_STEP = "state reason started_at finished_at error cached"


def step_json(latest: StepRecord, attempts: int) -> dict[str, Any]:
    """A step as its latest attempt left it."""
    return {"step": latest.step_id, "attempts": attempts, **_picked(latest, _STEP)}


def steps_json(records: list[StepRecord]) -> list[dict[str, Any]]:
    """Each step of a run, in the order the workflow declares them."""
    latest = latest_attempts(records)
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec.step_id] = counts.get(rec.step_id, 0) + 1
    ordered = sorted(latest.values(), key=lambda s: (s.position is None, s.position, s.step_id))
    return [step_json(s, counts[s.step_id]) for s in ordered]


def attempt_json(rec: StepRecord) -> dict[str, Any]:
    """One attempt of a step, with its output and traceback."""
    return {
        **_picked(rec, "attempt executor traceback " + _STEP),
        "output": _decoded(rec.output_json),
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    """An event; ``seq`` is the SSE id a client resumes after."""
    return {**_picked(event, "seq at kind step attempt"), "data": _decoded(event.data_json)}


def workflow_json(
    latest: StoredWorkflow, versions: list[StoredWorkflow] | None = None
) -> dict[str, Any]:
    """A stored workflow: its latest version's definition, and every version when given."""
    out: dict[str, Any] = {
        "id": latest.workflow_id,
        "name": latest.name,
        "version": latest.version,
        "format": latest.format,
        "created_at": latest.created_at,
    }
    if versions is not None:
        out["definition"] = latest.definition
        out["versions"] = [{"version": v.version, "created_at": v.created_at} for v in versions]
    return out
