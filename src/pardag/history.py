"""The recorded runs' API: ``resume``, ``approve``, ``reject``, ``cancel``, ``runs``.

Above the runner: each call reads what the run store recorded (``pardag.recording`` says what
that is), rebuilds the workflow a run recorded (from its file snapshot, or by importing it),
and, to go on with a run, hands the runner a ``Resumption`` explicitly
(``pardag.runner.resume_run``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import time
import types
from typing import TYPE_CHECKING, Any, Unpack, cast

from pardag import stepprocs
from pardag.errors import ArgumentError
from pardag.model import Workflow
from pardag.options import RunOptions
from pardag.owner import parse
from pardag.recording import (
    Resumption,
    latest_attempts,
    open_run_store,
    paused_since,
    recorded_settings,
)
from pardag.runner import resume_run
from pardag.runner.handle import RunHandle
from pardag.searchpath import add_folder
from pardag.secrets import Secrets
from pardag.states import RunStatus, StepState
from pardag.store.base import (
    APPROVED,
    REJECTED,
    Answer,
    RunRecord,
    RunUpdate,
    StepRecord,
    Store,
)

if TYPE_CHECKING:
    from pardag.results import RunResult

__all__ = [
    "approve",
    "cancel",
    "check_status",
    "due_runs",
    "owner_gone",
    "owner_gone_hint",
    "process_gone",
    "record_answer",
    "recorded_run",
    "reject",
    "required_store",
    "resume",
    "run_recorded",
    "runs",
    "stop_step_processes",
    "workflow_of",
]


_FINISHED = frozenset(status for status in RunStatus if status.is_final())


def resume(run_id: str, **options: Unpack[RunOptions]) -> RunResult:
    """Finish a run whose process died, in this process.

    Steps whose final state was committed keep it (and their outputs); steps that were running
    run again (at-least-once); the rest run as usual. ``options`` are as for ``run``
    (``store`` names the run store, ``PARDAG_STORE`` by default; the recorded settings apply
    unless given again; ``params`` are merged over the recorded ones).
    """
    opened, owned = required_store(options.get("store"), "resume")
    try:
        record = recorded_run(opened, run_id)
        _check_resumable(record)
        return run_recorded(opened, record, options)
    finally:
        if owned:
            opened.close()


def run_recorded(
    opened: Store, record: RunRecord, options: RunOptions, handle: RunHandle | None = None
) -> RunResult:
    """Go on with ``record``'s run in this process, from what ``opened`` recorded: a run a
    worker claimed (queued: none of its steps ran yet; taken over: the finished ones keep their
    outputs) or one ``resume`` checked. Stops the processes an earlier attempt left first.
    ``handle`` lets another thread cancel the run (a worker, when asked to)."""
    stop_step_processes(opened, record)
    wf = workflow_of(record)
    recorded = recorded_settings(record.settings_json)
    params = json.loads(record.params_json or "{}")
    secrets = Secrets.resumed(recorded, options.get("secrets"), params)  # from sources again
    params |= options.get("params") or {}
    given: dict[str, Any] = {**recorded, **options}
    given |= {"params": params, "store": opened, "secrets": secrets}
    return resume_run(wf, Resumption.read(opened, record), cast(RunOptions, given), handle)


def _check_resumable(record: RunRecord) -> None:
    if record.status in _FINISHED:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.finished_at or 0))
        raise ArgumentError(
            f"run {record.run_id} already finished: {record.status} at {when}; there is "
            "nothing to resume (start a new run instead)"
        )
    if record.status == RunStatus.QUEUED:
        raise ArgumentError(
            f"run {record.run_id} is queued: a worker will run it (start one with `pardag "
            "worker --store URL`); there is nothing to resume"
        )
    if record.status == RunStatus.RUNNING and record.lease_until is not None:
        raise ArgumentError(
            f"run {record.run_id} is held by worker {record.worker}: if that worker died, "
            "another worker takes the run over once its lease expires (start one with "
            "`pardag worker --store URL`); resuming it here too would run it twice"
        )
    pid = _live_local_pid(record)
    if record.status == RunStatus.RUNNING and pid is not None:
        raise ArgumentError(
            f"run {record.run_id} is still running in process {pid} on this machine; "
            "wait for it, or stop that process first"
        )


def stop_step_processes(opened: Store, record: RunRecord) -> None:
    """Make sure no process an earlier attempt of the run started still runs: kill each
    live one's process group and wait for it (``pardag.stepprocs``), so that a step run
    again never runs beside its earlier attempt. Raises when one cannot be stopped.

    Only on the machine that ran it: a run owned elsewhere is not looked at from here.
    """
    owner = parse(record.owner)
    if owner is not None and owner.host != socket.gethostname():
        return
    latest = latest_attempts(opened.get_steps(record.run_id)).values()
    recorded = [(s.step_id, ident) for s in latest for ident in (s.processes or "").split()]
    if not recorded:
        return
    left = stepprocs.stop([ident for _, ident in recorded])
    if left:
        steps = sorted({sid for sid, ident in recorded if int(ident.split(":")[0]) in left})
        raise ArgumentError(
            f"run {record.run_id}: the process(es) {', '.join(map(str, left))} of step(s) "
            f"{', '.join(map(repr, steps))}, started by an earlier attempt, still run and "
            "could not be stopped; stop them (kill -9 -PID, as their owner) and resume again"
        )


def process_gone(record: RunRecord) -> bool:
    """Whether a run recorded as running lost its process: one on this machine that is dead.

    (A process on another machine cannot be looked at from here: it counts as alive.) A run
    a worker holds a lease on is not lost: another worker takes it over once the lease
    expires (docs/server.md).
    """
    if record.lease_until is not None:
        return False
    owner = parse(record.owner)
    return owner is not None and owner.here and not owner.alive()


def owner_gone(record: RunRecord) -> bool:
    """Whether a run the store says is running has lost its process: one on this machine
    that is dead (killed with ``kill -9``, or the machine restarted). Nothing will ever finish
    such a run by itself; ``owner_gone_hint`` says what does. A view of what is stored plus a
    look at the process: the record is not changed."""
    return record.status == RunStatus.RUNNING and process_gone(record)


def owner_gone_hint(record: RunRecord) -> str:
    """What to do about a run whose process is gone (``owner_gone``), as commands."""
    short = record.run_id[:12]
    return (
        f"its process ({record.owner}) is gone: `pardag resume {short}` finishes it (the steps "
        f"that were running run again), `pardag cancel {short}` marks it cancelled"
    )


def _live_local_pid(record: RunRecord) -> int | None:
    """The pid of the run's process when it is on this machine, not this process, and still
    the process that started the run (not a later one that got its pid: ``pardag.owner``)."""
    owner = parse(record.owner)
    if owner is None or not owner.here or not owner.alive():
        return None
    return owner.pid


def workflow_of(record: RunRecord) -> Workflow:
    """Rebuild the workflow a run recorded: from its file snapshot, or by importing it."""
    if record.definition_format != "python":
        from pardag.formats import read_workflow
        from pardag.formats.document import parse_document

        reader, _, syntax = record.definition_format.partition(":")
        path = record.source or f"<run {record.run_id}>"
        if record.source:
            directory = os.path.dirname(record.source)
            add_folder(directory)
        return read_workflow(parse_document(record.definition, path, syntax or "yaml"), reader)
    if not record.source:
        raise ArgumentError(
            f"run {record.run_id} was built in Python and pardag could not tell where its "
            "Workflow object lives; define it at module level (wf = Workflow(...)) or set "
            "wf.import_path = 'package.module:wf' before running it"
        )
    return _import_workflow(record.source, record.run_id)


def _import_workflow(spec: str, run_id: str) -> Workflow:
    where, _, attr = spec.rpartition(":")
    try:
        load = _load_script if where.endswith(".py") else importlib.import_module
        module = load(where)
        wf = getattr(module, attr)
    except Exception as exc:
        raise ArgumentError(
            f"run {run_id}: cannot import its workflow {spec!r} ({type(exc).__name__}: {exc}); "
            "run resume where that module is importable (its directory on PYTHONPATH)"
        ) from None
    if not isinstance(wf, Workflow):
        raise ArgumentError(f"run {run_id}: {spec!r} is a {type(wf).__name__}, not a Workflow")
    return wf


def _load_script(path: str) -> types.ModuleType:
    """Import a script under another name than ``__main__``, so its main part does not run;
    a flow module's name, so that its functions go to worker processes by value (no worker
    could import it by that name: ``pardag.executors.payload``)."""
    from pardag.executors.payload import FLOW_MODULE_PREFIX

    spec = importlib.util.spec_from_file_location(f"{FLOW_MODULE_PREFIX}resumed", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def due_runs(store: Store, now: float | None = None) -> list[str]:
    """Paused runs with an approval whose wait is over: resuming one applies its ``on_timeout``.

    Nothing watches a paused run's clock once its process has exited, so ``pardag resume
    --due``, run from cron or a timer, is what applies approval timeouts to such runs. A run
    whose workflow can no longer be rebuilt is left out (``pardag resume RUN`` says why).
    """
    from pardag.units import parse_duration

    now = time.time() if now is None else now
    due = []
    for record in store.list_runs(status=RunStatus.PAUSED.value, limit=1_000_000):
        every = store.get_steps(record.run_id)
        paused = [s for s in latest_attempts(every).values() if s.state == StepState.PAUSED]
        since = paused_since(every)
        try:
            steps = workflow_of(record).steps
        except Exception:  # a file or module gone since: resume by hand, which says why
            continue
        for rec in paused:
            step = steps.get(rec.step_id)
            limit = step.params.get("timeout") if step is not None else None
            if step is None or step.kind != "approval" or limit is None:
                continue
            if since[rec.step_id] + parse_duration(limit, "timeout") <= now:
                due.append(record.run_id)
                break
    return due


def approve(
    run_id: str, step_id: str, value: Any = True, **options: Unpack[RunOptions]
) -> RunResult:
    """Answer a paused approval step with ``value`` (its output) and resume the run here.

    An answer that does not fit the step's ``schema`` is refused, and the run stays paused.
    """
    return _answer(run_id, step_id, APPROVED, value, None, options)


def reject(run_id: str, step_id: str, reason: str = "", **options: Unpack[RunOptions]) -> RunResult:
    """Reject a paused approval step (it fails with ``reason``) and resume the run here."""
    return _answer(run_id, step_id, REJECTED, None, reason or None, options)


def runs(
    *,
    store: Store | str | os.PathLike[str] | None = None,
    workflow: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    org: str | None = None,
) -> list[RunRecord]:
    """Recorded runs, newest first, filtered by workflow, status, start time and
    organisation (``org``; None: every organisation's)."""
    check_status(status, "status")
    opened, owned = required_store(store, "runs()")
    try:
        return opened.list_runs(
            workflow=workflow, status=status, since=since, until=until, limit=limit, org=org
        )
    finally:
        if owned:
            opened.close()


def check_status(status: str | None, what: str) -> None:
    """A run status filter must be one a run can have (a typo would list nothing, silently)."""
    known = [s.value for s in RunStatus]
    if status is not None and status not in known:
        raise ArgumentError(f"Invalid {what} value {status!r}: use one of {', '.join(known)}")


def required_store(store: Store | str | os.PathLike[str] | None, what: str) -> tuple[Store, bool]:
    """The run store ``what`` acts on, and whether it was opened here (then close it)."""
    opened, owned = open_run_store(store)
    if opened is None:
        raise ArgumentError(
            f"{what} needs the run store the run was recorded in: pass store=URL or set "
            "PARDAG_STORE"
        )
    return opened, owned


def _answer(
    run_id: str,
    step_id: str,
    decision: str,
    value: Any,
    reason: str | None,
    options: RunOptions,
) -> RunResult:
    opened, owned = required_store(options.get("store"), "answering an approval")
    try:
        record = record_answer(opened, run_id, step_id, decision, value, reason)
        go_on: RunOptions = {**options, "store": opened}
        return resume(record.run_id, **go_on)
    finally:
        if owned:
            opened.close()


def record_answer(
    opened: Store, run_id: str, step_id: str, decision: str, value: Any, reason: str | None
) -> RunRecord:
    """Record the answer to a paused approval step (checked against its ``schema`` when
    approved); the run's record. Going on with the run is the caller's: ``approve`` resumes it
    here, the HTTP API queues it for a worker."""
    from pardag.kinds.approval import answer_problem

    record = _unfinished_run(opened, run_id)
    latest = latest_attempts(opened.get_steps(record.run_id))
    step = latest.get(step_id)
    if step is None or step.state != StepState.PAUSED:
        now = "has not started" if step is None else f"is {step.state}"
        raise ArgumentError(
            f"step {step_id!r} of run {record.run_id} is not waiting for approval (it {now})"
        )
    if decision == APPROVED:
        schema = workflow_of(record).steps[step_id].params.get("schema")
        problem = answer_problem(schema, value)
        if problem is not None:
            raise ArgumentError(
                f"the answer does not fit step {step_id!r}'s schema: {problem}; the run "
                "stays paused"
            )
    opened.put_answer(
        Answer(record.run_id, step_id, decision, json.dumps(value), reason, time.time())
    )
    return record


def recorded_run(opened: Store, run_id: str) -> RunRecord:
    """The record of run ``run_id`` (a unique prefix will do); an error naming the store when
    it holds no such run."""
    record = opened.get_run(run_id)
    if record is None:
        raise ArgumentError(f"there is no run {run_id!r} in the run store {opened.url}")
    return record


def _unfinished_run(opened: Store, run_id: str) -> RunRecord:
    """The run's record; a run the store does not hold, or one that finished, is an error."""
    record = recorded_run(opened, run_id)
    if record.status in _FINISHED:
        raise ArgumentError(f"run {record.run_id} already finished: {record.status}")
    return record


def _cancelled_steps(opened: Store, record: RunRecord, now: float, by: str) -> list[StepRecord]:
    """The run's steps left running or paused (their latest attempts), now cancelled."""
    gone = "" if record.status == RunStatus.PAUSED else " (its process was gone)"
    out = []
    for step in latest_attempts(opened.get_steps(record.run_id)).values():
        if step.state in (StepState.RUNNING, StepState.PAUSED):
            step.state, step.finished_at = StepState.CANCELLED.value, now
            step.reason = f"cancelled by {by}{gone}"
            out.append(step)
    return out


CANCEL_BY = "`pardag cancel`"
"""Who cancels a run, in each cancelled step's reason, when the command line does."""


def cancel(
    run_id: str, *, store: Store | str | os.PathLike[str] | None = None, by: str = CANCEL_BY
) -> str:
    """Cancel a run that has not finished; returns what was done, in words.

    A run a worker holds, on any machine, gets a cancel request in the store: its worker reads
    it beside its lease renewals (``Store.cancel_requests``) and cancels the run as a first
    Ctrl-C does (running steps stopped, the run recorded cancelled, the lease let go), each
    cancelled step saying ``cancelled by {by}``; this returns once the request is recorded. A
    run whose process is alive on this machine is sent SIGTERM, which that process handles
    the same way (``cancelled by `pardag cancel` (SIGTERM)``). A paused run, or one whose
    process died, is marked cancelled in the store, with its steps that were running or
    paused, and so is a queued run (no worker claims it then). A finished run is left alone
    (an error).
    """
    opened, owned = required_store(store, "cancel")
    try:
        record = _unfinished_run(opened, run_id)
        if record.status == RunStatus.RUNNING and record.lease_until is not None:
            return _request_cancel(opened, record, by)
        pid, owner = _live_local_pid(record), parse(record.owner)
        if record.status == RunStatus.RUNNING and pid is not None:
            os.kill(pid, signal.SIGTERM)
            return f"asked process {pid} to cancel run {record.run_id}"
        if record.status == RunStatus.RUNNING and owner is not None and not owner.here:
            raise ArgumentError(
                f"run {record.run_id} runs on {owner.host} (process {owner.pid}); cancel it there"
            )
        if record.status == RunStatus.QUEUED:
            return _cancel_queued(opened, record, by)
        stop_step_processes(opened, record)
        now = time.time()
        update = RunUpdate(record.run_id, status=RunStatus.CANCELLED.value, finished_at=now)
        update.error = f"run cancelled: by {by}"
        opened.write(runs=[update], steps=_cancelled_steps(opened, record, now, by))
        return f"run {record.run_id} ({record.status}) is now cancelled"
    finally:
        if owned:
            opened.close()


def _cancel_queued(opened: Store, record: RunRecord, by: str) -> str:
    """Cancel a queued run, unless a worker claims it first (then ask that worker)."""
    if opened.cancel_queued(record.run_id, time.time(), f"run cancelled: by {by}"):
        return f"run {record.run_id} (queued) is now cancelled"
    return _request_cancel(opened, recorded_run(opened, record.run_id), by)


def _request_cancel(opened: Store, record: RunRecord, by: str) -> str:
    """Ask the worker holding ``record``'s run to cancel it; what was done, in words."""
    if opened.request_cancel(record.run_id, by, time.time()):
        return (
            f"asked worker {record.worker} to cancel run {record.run_id}: the worker stops it "
            "at its next check (every --poll seconds, 1 by default); "
            f"`pardag show {record.run_id[:12]}` shows it cancelled then"
        )
    now = recorded_run(opened, record.run_id)
    raise ArgumentError(
        f"run {record.run_id} is {now.status} now (it changed meanwhile); "
        f"run `pardag cancel {record.run_id[:12]}` again if it has not finished"
    )
