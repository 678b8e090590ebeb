"""Retry a finished run: a new attempt of the same run that runs again what failed (or the
steps asked for, and what depends on them) and reuses the outputs of the steps that succeeded.

``plan_retry`` decides which steps run again; ``retry`` writes that choice into the run's
record (``recording.Retried``, in its settings JSON) while it reopens the run (``Store.reopen``:
one conditional update, so two retries at once cannot both win), then goes on with the run as
``resume`` does (``history.run_recorded``), here or, queued, in a worker. The choice lives in
the store, so a worker, or a resume after a crash, runs again the same steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Unpack

from pardag.errors import ArgumentError, PardagError
from pardag.history import (
    owner_gone,
    owner_gone_hint,
    recorded_run,
    required_store,
    run_recorded,
    workflow_of,
)
from pardag.instances import instance_parent
from pardag.model import Graph
from pardag.options import RUN_OPTIONS, RunOptions, check_options
from pardag.owner import this_process
from pardag.recording import RETRIED, Retried, latest_attempts
from pardag.states import RunStatus, StepState
from pardag.store.base import RunRecord, RunUpdate, StepRecord, Store

if TYPE_CHECKING:
    from pardag.results import RunResult

__all__ = ["ALL", "FAILED", "RetryPlan", "plan_retry", "retry"]

FAILED = "failed"
"""``from_``: the steps that failed, were cancelled, or were skipped because of a failure."""
ALL = "all"
"""``from_``: every step."""

_UNFINISHED = (StepState.FAILED, StepState.CANCELLED)


@dataclass(frozen=True)
class RetryPlan:
    """What a retry of run ``run_id`` does: its number ``count``; ``rerun``, the steps that
    run again, and ``kept``, those whose recorded state and output stay (declaration order);
    ``marks``, each recorded id that runs again (mapped steps' instances too) with its latest
    attempt (``recording.Retried.rerun``)."""

    run_id: str
    count: int
    rerun: tuple[str, ...]
    kept: tuple[str, ...]
    marks: Mapping[str, int]


def retry(
    run_id: str,
    *,
    from_: str = FAILED,
    downstream: bool = True,
    queue: bool = False,
    **options: Unpack[RunOptions],
) -> RunResult | str:
    """Run a finished run again, as a new attempt of the same run: the steps ``from_`` names
    (``"failed"``, ``"all"`` or a step id), and with ``downstream`` every step that depends on
    them, run again; the others keep their recorded state and output.

    Runs it here and returns its ``RunResult``, or with ``queue`` puts it back in the run
    queue for a worker and returns its id. ``options`` are as for ``resume`` (``store`` names
    the run store; with ``queue`` nothing else: the worker runs it as recorded).
    """
    opened, owned = required_store(options.get("store"), "retry")
    try:
        check_options(options, RUN_OPTIONS, "retry()")
        given = sorted(k for k in options if k != "store")
        if queue and given:
            raise ArgumentError(
                f"retry(queue=True) of run {run_id}: a worker runs it with its recorded "
                f"settings and params; leave out {', '.join(given)}, or retry it here"
            )
        record = recorded_run(opened, run_id)
        plan = plan_retry(opened, record, from_, downstream)
        retried = Retried(
            plan.count, time.time(), plan.marks, {"from": from_, "downstream": downstream}
        )
        _reopen(opened, record, retried, queue)
        if queue:
            return record.run_id
        return _run_here(opened, record, {**options, "store": opened})
    finally:
        if owned:
            opened.close()


def plan_retry(opened: Store, record: RunRecord, from_: str, downstream: bool) -> RetryPlan:
    """Which steps a retry of ``record``'s run runs again; an error saying what to do when
    the run cannot be retried (it has not finished, ``from_`` names no step of it, nothing
    failed)."""
    if not isinstance(from_, str):
        raise ArgumentError(f"from_={from_!r}: give 'failed', 'all' or a step's id")
    _check_finished(record)
    graph = workflow_of(record).compile()
    latest = latest_attempts(opened.get_steps(record.run_id))
    seeds = _seeds(graph, latest, from_, record)
    chosen = _downstream(graph, seeds) if downstream else set(seeds)
    chosen |= {i for i in range(len(graph.ids)) if _unfinished(latest.get(graph.ids[i]))}
    chosen |= _unstored(graph, latest)
    if not chosen:
        raise ArgumentError(
            f"run {record.run_id} {record.status} and no step of it failed, was cancelled or "
            "was skipped because of a failure: there is nothing to retry; give --from all "
            "(from_='all') or --from STEP to run steps again"
        )
    whole = chosen - (
        {i for i in seeds if not set(graph.preds[i]) & chosen} if from_ == FAILED else set()
    )
    marks = _marks(graph, latest, chosen, whole)
    ids = graph.ids
    rerun = tuple(ids[i] for i in sorted(chosen))
    kept = tuple(ids[i] for i in range(len(ids)) if i not in chosen)
    return RetryPlan(record.run_id, Retried.of(record).count + 1, rerun, kept, marks)


def _check_finished(record: RunRecord) -> None:
    """Only a finished run is retried; else what to do with it instead."""
    short, status = record.run_id[:12], RunStatus(record.status)
    if status.is_final():
        return
    if status is RunStatus.QUEUED:
        todo = f"a worker will run it; `pardag cancel {short}` takes it out of the queue"
    elif status is RunStatus.PAUSED:
        todo = (
            f"it waits for an answer: `pardag approve`/`pardag reject` answer it, "
            f"`pardag resume {short}` goes on with it, `pardag cancel {short}` ends it"
        )
    elif owner_gone(record):
        todo = owner_gone_hint(record)
    else:
        todo = f"wait for it to end, or stop it with `pardag cancel {short}`"
    raise ArgumentError(
        f"run {record.run_id} is {status}: only a finished run can be retried; {todo}, then "
        "retry it"
    )


def _seeds(
    graph: Graph, latest: Mapping[str, StepRecord], from_: str, record: RunRecord
) -> set[int]:
    """The steps ``from_`` names (before their downstream)."""
    if from_ == ALL:
        return set(range(len(graph.ids)))
    if from_ == FAILED:
        return _failed(graph, latest)
    if from_ in graph.index:
        return {graph.index[from_]}
    parent = instance_parent(from_, graph.index)
    if parent is not None:
        raise ArgumentError(
            f"run {record.run_id}: {from_!r} is an instance of mapped step {parent!r}; retry "
            f"from {parent!r} (its instances run again, all of them)"
        )
    raise ArgumentError(
        f"run {record.run_id} has no step {from_!r}: give 'failed', 'all', or one of its "
        f"steps: {', '.join(graph.ids)}"
    )


def _failed(graph: Graph, latest: Mapping[str, StepRecord]) -> set[int]:
    """The steps that failed or were cancelled (or an instance of them did), and those skipped
    because of them, in graph order."""
    parents = {instance_parent(sid, graph.index) for sid, rec in latest.items() if _bad(rec)}
    out: set[int] = set()
    for i in graph.order:
        rec = latest.get(graph.ids[i])
        if rec is None or graph.ids[i] in parents or _failed_here(rec, graph.preds[i], out):
            out.add(i)
    return out


def _bad(rec: StepRecord) -> bool:
    return rec.state in _UNFINISHED


def _failed_here(rec: StepRecord, preds: tuple[int, ...], failed: set[int]) -> bool:
    """It failed, was cancelled, or was skipped because of that: ``upstream failed``, or
    skipped after a step of ``failed`` was."""
    if _bad(rec):
        return True
    reason = (rec.reason or "") if rec.state == StepState.SKIPPED else ""
    if reason.startswith("upstream failed"):
        return True
    return reason.startswith(("upstream skipped", "no upstream succeeded")) and bool(
        set(preds) & failed
    )


def _unfinished(rec: StepRecord | None) -> bool:
    """A step with no final record runs in any retry: a retry leaves no step unfinished."""
    if rec is None:
        return True
    state = StepState(rec.state)
    return not state.is_final() or state is StepState.CANCELLED


def _downstream(graph: Graph, seeds: set[int]) -> set[int]:
    out, stack = set(seeds), list(seeds)
    while stack:
        for s in graph.succs[stack.pop()]:
            if s not in out:
                out.add(s)
                stack.append(s)
    return out


def _unstored(graph: Graph, latest: Mapping[str, StepRecord]) -> set[int]:
    """Succeeded steps whose output the store does not hold (``output_stored`` False): a
    resumed run has no output to give them, so they run again (``RunRecords.restore``)."""
    ids = graph.ids
    return {i for i in range(len(ids)) if (r := latest.get(ids[i])) and not r.output_stored}


def _marks(
    graph: Graph, latest: Mapping[str, StepRecord], chosen: set[int], whole: set[int]
) -> dict[str, int]:
    """Each recorded id that runs again, with its latest attempt: the chosen steps, every
    instance of a mapped step in ``whole``, and the failed ones of the others."""
    marks = {
        graph.ids[i]: (latest[graph.ids[i]].attempt if graph.ids[i] in latest else 0)
        for i in chosen
    }
    for sid, rec in latest.items():
        parent = instance_parent(sid, graph.index)
        if parent is None or graph.index[parent] not in chosen:
            continue
        if graph.index[parent] in whole or _bad(rec) or rec.state == StepState.SKIPPED:
            marks[sid] = rec.attempt
    return marks


def _reopen(opened: Store, record: RunRecord, retried: Retried, queue: bool) -> None:
    """The run's record, status ``running`` here (or ``queued``), with the retry's choice."""
    settings = json.loads(record.settings_json or "{}")
    settings[RETRIED] = retried.to_json()
    status = RunStatus.QUEUED if queue else RunStatus.RUNNING
    owner = None if queue else this_process()
    if not opened.reopen(record.run_id, record.status, status.value, json.dumps(settings), owner):
        now = recorded_run(opened, record.run_id)
        raise ArgumentError(
            f"run {record.run_id} changed while it was being retried: it is {now.status} now "
            f"(another retry got there first); see `pardag show {record.run_id[:12]}`"
        )


def _run_here(opened: Store, record: RunRecord, options: RunOptions) -> RunResult:
    """Go on with the reopened run here; if it cannot start (an option, a secret missing),
    the run is put back as it was, and the error raised."""
    events = len(opened.get_events(record.run_id))
    try:
        return run_recorded(opened, recorded_run(opened, record.run_id), options)
    except PardagError:
        if len(opened.get_events(record.run_id)) == events:  # nothing of it ran
            back = RunUpdate(record.run_id, record.status, record.finished_at, record.error)
            opened.write(runs=[back])
        raise
