"""The JSON that ``pardag`` prints: strict JSON whatever the steps returned, with the keys of
``pardag run --json`` for a run just finished and for a recorded one alike."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from pardag.events import Event
from pardag.progress import speedup
from pardag.recording import latest_attempts
from pardag.results import RunResult
from pardag.states import StepState
from pardag.store.base import RunRecord, StepRecord

__all__ = ["JsonLines", "dumps", "result_json", "run_json", "step_seconds"]


def result_json(result: RunResult) -> dict[str, Any]:
    """The run as JSON-ready data; these keys are stable (``pardag run --json``)."""
    return {
        "run_id": result.run_id,
        "workflow": result.workflow,
        "status": result.status.value,
        "error": None if result.error is None else str(result.error),
        "final_output": result.final_output,
        "outputs": dict(result.outputs),
        "steps": {
            sid: {
                "state": step.state.value,
                "reason": step.reason,
                "attempts": step.attempts,
                "cached": step.cached,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
                "duration": step.duration,
                "error": None if step.error is None else str(step.error),
            }
            for sid, step in result.steps.items()
        },
        "duration": result.finished_at - result.started_at,
        "speedup": speedup(result),
    }


def run_json(record: RunRecord, steps: list[StepRecord]) -> dict[str, Any]:
    """A recorded run with the keys of ``pardag run --json``."""
    latest = latest_attempts(steps)
    outputs = {
        sid: json.loads(s.output_json)
        for sid, s in latest.items()
        if s.state == StepState.SUCCEEDED and s.output_json is not None
    }
    finished = [s for s in latest.values() if s.finished_at]
    last = max(finished, key=lambda s: s.finished_at or 0.0, default=None)
    return {
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": record.status,
        "error": record.error,
        "final_output": outputs.get(last.step_id) if last is not None else None,
        "outputs": outputs,
        "steps": {
            sid: {
                "state": s.state,
                "reason": s.reason,
                "attempts": s.attempt,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "duration": step_seconds(s),
                "error": s.error,
                "cached": s.cached,
            }
            for sid, s in latest.items()
        },
    }


def step_seconds(s: StepRecord) -> float | None:
    """How long a recorded step attempt ran; None until it has started and finished."""
    if s.started_at is None or s.finished_at is None:
        return None
    return s.finished_at - s.started_at


def dumps(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON, whatever the steps returned (see ``_plain``)."""
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


_SCALARS = (str, int, bool, type(None))


def _plain(value: Any) -> Any:
    """What JSON can hold: sets and tuples as lists, bytes as text, keys as strings, and
    anything else (an object, NaN) as its ``repr()``."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return [_plain(v) for v in sorted(value, key=repr)]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


class JsonLines:
    """A listener writing each event as one JSON object per line (``--events FILE``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def on_event(self, event: Event) -> None:
        record = {
            "kind": event.kind.value,
            "run": event.run,
            "time": event.time,
            "step": event.step,
            "attempt": event.attempt,
            "data": event.data,
        }
        self.stream.write(dumps(record) + "\n")
