"""What a run records about itself in the run store, and what a resumed run reads back.

Below the runner: which store a run uses (``open_run_store``), the record of a new run
(``run_record``: a snapshot of the definition, or where to import a workflow built in Python),
the settings as JSON and back, ``Resumption``, what an earlier process of a run left for
the next one, and ``Retried``, what a retry of a finished run chose to run again.
``pardag.history`` (resume, approve, reject, cancel, runs) and ``pardag.rerun`` (retry) build
on this from above the runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pardag.model import Settings
from pardag.states import RunStatus, StepState
from pardag.store.base import Answer, RunRecord, StepRecord, Store

if TYPE_CHECKING:
    from pardag.model import Workflow

__all__ = [
    "RETRIED",
    "SERVICE",
    "Resumption",
    "Retried",
    "StepHistory",
    "encode_json",
    "find_import_path",
    "latest_attempts",
    "open_run_store",
    "paused_since",
    "queued_record",
    "recorded_settings",
    "run_record",
    "service_origin",
    "settings_json",
    "step_histories",
]


@dataclass(frozen=True)
class Resumption:
    """What an earlier process of a run recorded, for the process that resumes it.

    ``steps`` holds each step's latest attempt; ``first_event`` is the number the next event
    gets; ``paused_since`` says when each paused step first paused (an approval's timeout
    counts from then).
    """

    record: RunRecord
    steps: Sequence[StepRecord]
    first_event: int = 1
    paused_since: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def read(cls, store: Store, record: RunRecord) -> Resumption:
        """Everything ``store`` holds about the run ``record``, for resuming it: a step a
        retry runs again and has not run yet counts as pending (``Retried``)."""
        retried = Retried.of(record)
        every = store.get_steps(record.run_id)
        first_event = len(store.get_events(record.run_id)) + 1
        latest = [
            replace(rec, state=StepState.PENDING.value) if retried.pending(rec) else rec
            for rec in latest_attempts(every).values()
        ]
        since = paused_since([rec for rec in every if not retried.pending(rec)])
        return cls(record, latest, first_event, since)


RETRIED = "retried"
"""The entry of a run's settings JSON that holds its latest retry (``Retried``)."""
SERVICE = "service"
"""The entry of a run's settings JSON naming the part of the service that queued it (``api``,
``webhook``, ``schedule``): such a run gets the service's egress preset (docs/server.md)."""


def service_origin(record: RunRecord) -> str | None:
    """What of the service queued the run (``SERVICE``), or None: the command line or Python."""
    try:
        via = json.loads(record.settings_json or "{}").get(SERVICE)
    except (ValueError, AttributeError):
        return None
    return via if isinstance(via, str) else None


@dataclass(frozen=True)
class Retried:
    """What the latest ``pardag retry`` of a run chose, kept in the run's settings JSON so
    that whoever goes on with the run (this process, a worker, a resume after a crash) reads
    the same choice.

    ``count`` is how many times the run was retried, ``at`` when the latest retry began,
    ``rerun`` each step (and mapped step's instance) it runs again, with its latest attempt
    then: an attempt no later than that is from before the retry (the step has not run again
    yet), a later one is the retry's own, kept as a resume keeps any step.
    ``chosen`` records what was asked (``failed``, ``all`` or a step, and ``downstream``).
    """

    count: int = 0
    at: float = 0.0
    rerun: Mapping[str, int] = field(default_factory=dict)
    chosen: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: RunRecord) -> Retried:
        """The run's latest retry (count 0: it was never retried)."""
        found = json.loads(record.settings_json or "{}").get(RETRIED)
        if not isinstance(found, dict):
            return cls()
        rerun = {str(k): int(v) for k, v in (found.get("rerun") or {}).items()}
        chosen = {k: v for k, v in found.items() if k in ("from", "downstream")}
        return cls(int(found.get("count", 0)), float(found.get("at", 0.0)), rerun, chosen)

    def to_json(self) -> dict[str, Any]:
        """As the settings JSON keeps it."""
        return {"count": self.count, "at": self.at, **self.chosen, "rerun": dict(self.rerun)}

    def pending(self, rec: StepRecord) -> bool:
        """Whether ``rec`` is an attempt from before the retry of a step the retry runs again."""
        mark = self.rerun.get(rec.step_id)
        return mark is not None and rec.attempt <= mark

    def standing(self, answers: Mapping[str, Answer]) -> dict[str, Answer]:
        """The approval answers that still count: one given, before the retry, to a step the
        retry runs again is not (the step asks again)."""
        rerun, at = self.rerun, self.at
        return {s: a for s, a in answers.items() if s not in rerun or a.answered_at > at}


def open_run_store(store: Store | str | os.PathLike[str] | None) -> tuple[Store | None, bool]:
    """The store a run records to, and whether the caller opened it (and must close it).

    ``None`` means ``PARDAG_STORE`` if set, else no store (the run stays in memory).
    """
    if isinstance(store, Store):
        return store, False
    url = store if store is not None else os.environ.get("PARDAG_STORE") or None
    if url is None:
        return None, False
    from pardag.store import open_store  # the backends load only when a store is asked for

    return open_store(url), True


def run_record(wf: Workflow, run_id: str) -> RunRecord:
    """What the store keeps about ``wf`` for a new run ``run_id`` (status ``running``)."""
    definition = wf.definition
    if wf.definition_format == "python":
        source = wf.import_path or find_import_path(wf)
    else:
        source = os.path.abspath(wf.source) if wf.source else None
    digest = hashlib.sha256(
        (definition or f"{source}:{sorted(wf.steps)}").encode("utf-8", "replace")
    ).hexdigest()
    return RunRecord(
        run_id,
        wf.name,
        RunStatus.RUNNING.value,
        time.time(),
        definition=definition,
        definition_format=wf.definition_format,
        definition_hash=digest,
        source=source,
    )


def queued_record(
    wf: Workflow,
    run_id: str,
    *,
    settings: Settings,
    params: Mapping[str, Any],
    trigger: Mapping[str, Any],
    org: str,
    via: str | None = None,
) -> RunRecord:
    """What the store keeps about a run of ``wf`` submitted to the run queue: everything a
    worker needs to run it (the definition's snapshot, ``settings``, ``params`` and
    ``trigger`` data as JSON), status ``queued``, in organisation ``org``; ``via``: the part
    of the service that started it (``SERVICE``)."""
    record = run_record(wf, run_id)
    record.status = RunStatus.QUEUED.value
    record.settings_json = settings_json(settings, {SERVICE: via} if via else None)
    record.params_json = encode_json(params, repr) or "{}"
    record.trigger_json = encode_json(trigger, repr) or "{}"
    record.org = org
    return record


def find_import_path(wf: Workflow) -> str | None:
    """``module:attribute`` holding ``wf``, looked for in the modules of its steps' functions.

    A workflow defined in a script run as ``__main__`` is recorded by the script's path
    (``/path/flow.py:wf``), which ``resume`` imports under another name so that the script's
    ``if __name__ == "__main__":`` part does not run again.
    """
    seen: set[str] = set()
    for step in wf.steps.values():
        name = getattr(step.fn, "__module__", None)
        if not name or name in seen:
            continue
        seen.add(name)
        module = sys.modules.get(name)
        for attr, value in vars(module).items() if module is not None else ():
            if value is wf:
                if name == "__main__":
                    path = getattr(module, "__file__", None)
                    return f"{os.path.abspath(path)}:{attr}" if path else None
                return f"{name}:{attr}"
    return None


def encode_json(value: Any, default: Any = None) -> str | None:
    """``value`` as JSON text, or None when JSON cannot hold it (even with ``default``)."""
    if value is None:
        return "null"
    try:
        return json.dumps(value, default=default, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def settings_json(settings: Settings, extra: Mapping[str, Any] | None = None) -> str:
    """The run's settings as the store records them (and ``extra``: the names of its
    secrets, which a resumed run needs again)."""
    fields = {f: getattr(settings, f) for f in Settings.__dataclass_fields__} | dict(extra or {})
    return encode_json(fields, repr) or "{}"


def recorded_settings(text: str | None) -> dict[str, Any]:
    """``settings_json``'s text back as run options (a rate-limited pool is a tuple again)."""
    settings: dict[str, Any] = json.loads(text or "{}")
    settings.pop(RETRIED, None)  # what a retry chose: no run option (``Retried``)
    settings.pop(SERVICE, None)  # who queued it: no run option either
    pools = settings.get("pools") or {}
    settings["pools"] = {k: tuple(v) if isinstance(v, list) else v for k, v in pools.items()}
    return settings


def paused_since(steps: Sequence[StepRecord]) -> dict[str, float]:
    """When each step first paused (an approval's timeout counts from then)."""
    since: dict[str, float] = {}
    for rec in steps:
        if rec.state == StepState.PAUSED and rec.started_at is not None:
            since[rec.step_id] = min(since.get(rec.step_id, rec.started_at), rec.started_at)
    return since


def latest_attempts(steps: Sequence[StepRecord]) -> dict[str, StepRecord]:
    """Each step's latest recorded attempt, by step id (in the order the steps come)."""
    latest: dict[str, StepRecord] = {}
    for rec in steps:
        if rec.step_id not in latest or rec.attempt >= latest[rec.step_id].attempt:
            latest[rec.step_id] = rec
    return latest


@dataclass(frozen=True)
class StepHistory:
    """Every recorded attempt of one step, oldest first; ``last`` is the one that counts."""

    attempts: tuple[StepRecord, ...]

    @property
    def last(self) -> StepRecord:
        return self.attempts[-1]

    @property
    def started_at(self) -> float | None:
        """When its first attempt started (as ``StepResult.started_at``)."""
        return min((a.started_at for a in self.attempts if a.started_at), default=None)

    @property
    def duration(self) -> float | None:
        """From its first start to its final end (as ``StepResult.duration``); None before."""
        start, end = self.started_at, self.last.finished_at
        return None if start is None or end is None else end - start


def step_histories(steps: Sequence[StepRecord]) -> dict[str, StepHistory]:
    """Each step's attempts, the steps in declaration order (``position``; records without
    one, from older pardags, after them by first start, then id)."""
    by_step: dict[str, list[StepRecord]] = {}
    for rec in sorted(steps, key=lambda r: r.attempt):
        by_step.setdefault(rec.step_id, []).append(rec)
    histories = {sid: StepHistory(tuple(found)) for sid, found in by_step.items()}

    def place(sid: str) -> tuple[int, float, str]:
        history = histories[sid]
        position = next((a.position for a in history.attempts if a.position is not None), None)
        unknown = 1 << 62
        return (unknown if position is None else position, history.started_at or 0.0, sid)

    return {sid: histories[sid] for sid in sorted(histories, key=place)}
