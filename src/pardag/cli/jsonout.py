"""The JSON that ``pardag`` prints: strict JSON whatever the steps returned, with the keys of
``pardag run --json`` for a run just finished and for a recorded one alike."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import IO, Any

from pardag.events import Event
from pardag.instances import instances_of
from pardag.progress import speedup, speedup_of
from pardag.recording import step_histories
from pardag.results import RunResult
from pardag.states import RunStatus, StepState
from pardag.store.base import RunRecord, StepRecord

__all__ = [
    "JsonLines",
    "dumps",
    "event_json",
    "result_json",
    "run_json",
    "step_json",
    "with_mapping",
]


def result_json(result: RunResult) -> dict[str, Any]:
    """The run as JSON-ready data; these keys are stable (``pardag run --json``)."""
    steps = {
        sid: step_json(
            step.state.value,
            step.reason,
            step.attempts,
            step.cached,
            (step.started_at, step.finished_at),
            None if step.error is None else str(step.error),
        )
        for sid, step in result.steps.items()
    }
    with_mapping(steps)
    head = (result.run_id, result.workflow, result.status.value)
    error = None if result.error is None else str(result.error)
    wall = (result.finished_at - result.started_at, speedup(result))
    return _run_document(head, error, result.final_output, dict(result.outputs), steps, wall)


def run_json(record: RunRecord, steps: list[StepRecord]) -> dict[str, Any]:
    """A recorded run with the keys of ``pardag run --json``: its steps in declaration order,
    each step's times from its first start to its final end."""
    histories = step_histories(steps)
    outputs = {
        sid: json.loads(h.last.output_json)
        for sid, h in histories.items()
        if h.last.state == StepState.SUCCEEDED and h.last.output_json is not None
    }
    finished = [h.last for h in histories.values() if h.last.finished_at]
    last = max(finished, key=lambda s: s.finished_at or 0.0, default=None)
    shaped = {
        sid: step_json(
            h.last.state,
            h.last.reason,
            h.last.attempt,
            h.last.cached,
            (h.started_at, h.last.finished_at),
            h.last.error,
        )
        for sid, h in histories.items()
    }
    with_mapping(shaped)
    head = (record.run_id, record.workflow, record.status)
    final = outputs.get(last.step_id) if last is not None else None
    spans = [(h.started_at, h.last.finished_at) for h in histories.values()]
    ratio = speedup_of(
        record.status == RunStatus.SUCCEEDED,
        ((a, b) for a, b in spans if a is not None and b is not None),
    )
    took = None if record.finished_at is None else record.finished_at - record.created_at
    return _run_document(head, record.error, final, outputs, shaped, (took, ratio))


def with_mapping(steps: dict[str, dict[str, Any]]) -> None:
    """Add to each instance's record its mapped step (``"parent": "process"``) and to each
    mapped step's its instances' number (``"instances": 200``); other steps have neither key."""
    for parent, mine in instances_of(steps).items():
        steps[parent]["instances"] = len(mine)
        for sid in mine:
            steps[sid]["parent"] = parent


def step_json(
    state: str,
    reason: str | None,
    attempts: int,
    cached: bool,
    times: tuple[float | None, float | None],
    error: str | None,
) -> dict[str, Any]:
    """One step as ``pardag run --json`` and ``pardag show --json`` give it."""
    started, finished = times
    return {
        "state": state,
        "reason": reason,
        "attempts": attempts,
        "cached": cached,
        "started_at": started,
        "finished_at": finished,
        "duration": None if started is None or finished is None else finished - started,
        "error": error,
    }


def _run_document(
    head: tuple[str, str, str],
    error: str | None,
    final_output: Any,
    outputs: dict[str, Any],
    steps: dict[str, dict[str, Any]],
    wall: tuple[float | None, float | None],
) -> dict[str, Any]:
    """The run's keys, the same for a run just finished and a recorded one; ``wall`` is
    (the run's duration, its speed-up: ``progress.speedup``'s rule, None where meaningless)."""
    run_id, workflow, status = head
    return {
        "run_id": run_id,
        "workflow": workflow,
        "status": status,
        "error": error,
        "final_output": final_output,
        "outputs": outputs,
        "steps": steps,
        "duration": wall[0],
        "speedup": wall[1],
    }


def event_json(
    run: str, seq: int, at: float, kind: str, where: tuple[str | None, int], data: Any
) -> dict[str, Any]:
    """One event as ``--events FILE`` and ``pardag logs`` write it: ``at`` in seconds since
    the epoch, ``where`` the step (None for the run's own events) and its attempt."""
    step, attempt = where
    return {
        "seq": seq,
        "at": at,
        "run": run,
        "kind": kind,
        "step": step,
        "attempt": attempt,
        "data": data,
    }


def dumps(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON, whatever the steps returned (see ``_plain``)."""
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


_SCALARS = (str, int, bool, type(None))
MAX_SHOWN_DEPTH = 200
"""Deepest nesting printed; deeper values are shown as ``TOO_DEEP`` (a step may return any
depth, and Python's own JSON gives up near 1,000 levels with a RecursionError)."""
TOO_DEEP = f"<nested more than {MAX_SHOWN_DEPTH} levels deep: not shown>"


def _plain(value: Any, depth: int = 0) -> Any:
    """What JSON can hold: sets and tuples as lists, bytes as text, keys as strings, and
    anything else (an object, NaN) as its ``repr()``; past ``MAX_SHOWN_DEPTH``, ``TOO_DEEP``."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return repr(value)
    if depth >= MAX_SHOWN_DEPTH:
        return TOO_DEEP
    inner = depth + 1
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _plain(v, inner) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        value = sorted(value, key=repr)
    return [_plain(v, inner) for v in value]


class JsonLines:
    """A listener writing each event as one JSON object per line (``--events FILE``), in the
    schema of ``pardag logs`` (``event_json``); ``seq`` counts this process's events."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._seq = 0

    def on_event(self, event: Event) -> None:
        self._seq += 1
        at = time.time() - (time.monotonic() - event.time)
        where = (event.step, event.attempt)
        record = event_json(event.run, self._seq, at, event.kind.value, where, event.data)
        self.stream.write(dumps(record) + "\n")
