"""Runs in the run store, from Python: which store a run uses, what it records about the
workflow, and the history API (``pardag.runs``, ``pardag.resume``).

A run is recorded when a store is given (``store=`` a ``Store`` or a URL), or when the
``PARDAG_STORE`` environment variable names one; otherwise it stays in memory. The record keeps
a snapshot of the definition (a workflow file's text) or, for a workflow built in Python, the
``module:attribute`` to import it from, so that ``resume`` can rebuild it in a new process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import time
import types
from typing import TYPE_CHECKING, Any

from pardag.errors import ArgumentError
from pardag.store.base import Answer, RunRecord, RunUpdate, StepRecord, Store

if TYPE_CHECKING:
    from pardag.model import Workflow
    from pardag.results import RunResult

__all__ = [
    "approve",
    "cancel",
    "check_status",
    "due_runs",
    "find_import_path",
    "latest_attempts",
    "open_run_store",
    "process_gone",
    "recorded_run",
    "reject",
    "resume",
    "run_record",
    "runs",
    "workflow_of",
]


def open_run_store(store: Store | str | os.PathLike[str] | None) -> tuple[Store | None, bool]:
    """The store a run records to, and whether the caller opened it (and must close it).

    ``None`` means ``PARDAG_STORE`` if set, else no store (the run stays in memory).
    """
    if isinstance(store, Store):
        return store, False
    url = store if store is not None else os.environ.get("PARDAG_STORE") or None
    if url is None:
        return None, False
    from pardag.store import open_store

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
        "running",
        time.time(),
        definition=definition,
        definition_format=wf.definition_format,
        definition_hash=digest,
        source=source,
    )


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


_FINISHED = ("succeeded", "failed", "cancelled", "timed_out")


def resume(
    run_id: str, *, store: Store | str | os.PathLike[str] | None = None, **overrides: Any
) -> RunResult:
    """Finish a run whose process died, in this process.

    Steps whose final state was committed keep it (and their outputs); steps that were running
    run again (at-least-once); the rest run as usual. ``overrides`` are as for ``run``
    (settings, ``listeners``, ``params`` merged over the recorded ones).
    """
    opened, owned = open_run_store(store)
    if opened is None:
        raise ArgumentError(
            "resume needs the run store the run was recorded in: pass store=URL or set PARDAG_STORE"
        )
    try:
        record = recorded_run(opened, run_id)
        _check_resumable(record)
        wf = workflow_of(record)
        settings = _recorded_settings(record.settings_json)
        params = {**json.loads(record.params_json or "{}"), **(overrides.pop("params", None) or {})}
        every = opened.get_steps(record.run_id)
        first_event = len(opened.get_events(record.run_id)) + 1
        args = {**settings, **overrides, "params": params, "store": opened}
        args["_resume"] = (
            record,
            list(latest_attempts(every).values()),
            first_event,
            _paused_since(every),
        )
        return wf.run(**args)
    finally:
        if owned:
            opened.close()


def _check_resumable(record: RunRecord) -> None:
    if record.status in _FINISHED:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.finished_at or 0))
        raise ArgumentError(
            f"run {record.run_id} already finished: {record.status} at {when}; there is "
            "nothing to resume (start a new run instead)"
        )
    pid = _local_pid(record)
    if record.status == "running" and pid is not None and _alive(pid):
        raise ArgumentError(
            f"run {record.run_id} is still running in process {pid} on this machine; "
            "wait for it, or stop that process first"
        )


def process_gone(record: RunRecord) -> bool:
    """Whether a run recorded as running lost its process: one on this machine that is dead.

    (A process on another machine cannot be looked at from here: it counts as alive.)
    """
    pid = _local_pid(record)
    return pid is not None and not _alive(pid)


def _local_pid(record: RunRecord) -> int | None:
    """The pid of the run's process when it is on this machine and not this process, else
    None (``owner`` is recorded as ``host:pid``)."""
    host, _, pid = (record.owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def workflow_of(record: RunRecord) -> Workflow:
    """Rebuild the workflow a run recorded: from its file snapshot, or by importing it."""
    if record.definition_format != "python":
        from pardag.formats import read_workflow
        from pardag.formats.document import parse_document

        reader, _, syntax = record.definition_format.partition(":")
        path = record.source or f"<run {record.run_id}>"
        if record.source:
            directory = os.path.dirname(record.source)
            if directory not in sys.path:
                sys.path.insert(0, directory)
        return read_workflow(parse_document(record.definition, path, syntax or "yaml"), reader)
    if not record.source:
        raise ArgumentError(
            f"run {record.run_id} was built in Python and pardag could not tell where its "
            "Workflow object lives; define it at module level (wf = Workflow(...)) or set "
            "wf.import_path = 'package.module:wf' before running it"
        )
    return _import_workflow(record.source, record.run_id)


def _import_workflow(spec: str, run_id: str) -> Workflow:
    from pardag.model import Workflow

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
    """Import a script under another name than ``__main__``, so its main part does not run."""
    spec = importlib.util.spec_from_file_location("_pardag_resumed_script", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _recorded_settings(text: str) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(text or "{}")
    pools = settings.get("pools") or {}
    settings["pools"] = {k: tuple(v) if isinstance(v, list) else v for k, v in pools.items()}
    return settings


def _paused_since(steps: list[StepRecord]) -> dict[str, float]:
    """When each step first paused (an approval's timeout counts from then)."""
    since: dict[str, float] = {}
    for rec in steps:
        if rec.state == "paused" and rec.started_at is not None:
            since[rec.step_id] = min(since.get(rec.step_id, rec.started_at), rec.started_at)
    return since


def due_runs(store: Store, now: float | None = None) -> list[str]:
    """Paused runs with an approval whose wait is over: resuming one applies its ``on_timeout``.

    Nothing watches a paused run's clock once its process has exited, so ``pardag resume
    --due``, run from cron or a timer, is what applies approval timeouts to such runs. A run
    whose workflow can no longer be rebuilt is left out (``pardag resume RUN`` says why).
    """
    from pardag.units import parse_duration

    now = time.time() if now is None else now
    due = []
    for record in store.list_runs(status="paused", limit=1_000_000):
        every = store.get_steps(record.run_id)
        paused = [s for s in latest_attempts(every).values() if s.state == "paused"]
        since = _paused_since(every)
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


def latest_attempts(steps: list[StepRecord]) -> dict[str, StepRecord]:
    """Each step's latest recorded attempt, by step id (in the order the steps come)."""
    latest: dict[str, StepRecord] = {}
    for rec in steps:
        if rec.step_id not in latest or rec.attempt >= latest[rec.step_id].attempt:
            latest[rec.step_id] = rec
    return latest


def approve(
    run_id: str,
    step_id: str,
    value: Any = True,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> RunResult:
    """Answer a paused approval step with ``value`` (its output) and resume the run here.

    An answer that does not fit the step's ``schema`` is refused, and the run stays paused.
    """
    return _answer(run_id, step_id, "approved", value, None, store, overrides)


def reject(
    run_id: str,
    step_id: str,
    reason: str = "",
    *,
    store: Store | str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> RunResult:
    """Reject a paused approval step (it fails with ``reason``) and resume the run here."""
    return _answer(run_id, step_id, "rejected", None, reason or None, store, overrides)


def runs(
    *,
    store: Store | str | os.PathLike[str] | None = None,
    workflow: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """Recorded runs, newest first, filtered by workflow, status and start time."""
    check_status(status, "status")
    opened, owned = _required_store(store, "runs()")
    try:
        return opened.list_runs(
            workflow=workflow, status=status, since=since, until=until, limit=limit
        )
    finally:
        if owned:
            opened.close()


def check_status(status: str | None, what: str) -> None:
    """A run status filter must be one a run can have (a typo would list nothing, silently)."""
    from pardag.results import RunStatus

    known = [s.value for s in RunStatus]
    if status is not None and status not in known:
        raise ArgumentError(f"Invalid {what} value {status!r}: use one of {', '.join(known)}")


def _required_store(store: Store | str | os.PathLike[str] | None, what: str) -> tuple[Store, bool]:
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
    store: Store | str | os.PathLike[str] | None,
    overrides: dict[str, Any],
) -> RunResult:
    from pardag.kinds.approval import answer_problem

    opened, owned = _required_store(store, "answering an approval")
    try:
        record = _unfinished_run(opened, run_id)
        latest = latest_attempts(opened.get_steps(record.run_id))
        step = latest.get(step_id)
        if step is None or step.state != "paused":
            now = "has not started" if step is None else f"is {step.state}"
            raise ArgumentError(
                f"step {step_id!r} of run {record.run_id} is not waiting for approval (it {now})"
            )
        if decision == "approved":
            schema = workflow_of(record).steps[step_id].params.get("schema")
            problem = answer_problem(schema, value)
            if problem is not None:
                raise ArgumentError(
                    f"the answer does not fit step {step_id!r}'s schema: {problem}; the run "
                    "stays paused"
                )
        answer = Answer(record.run_id, step_id, decision, json.dumps(value), reason, time.time())
        opened.put_answer(answer)
        return resume(record.run_id, store=opened, **overrides)
    finally:
        if owned:
            opened.close()


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


def cancel(run_id: str, *, store: Store | str | os.PathLike[str] | None = None) -> str:
    """Cancel a run that has not finished; returns what was done, in words.

    A run whose process is alive on this machine is sent SIGINT, which that process handles as
    Ctrl-C (running steps stopped, the run recorded cancelled). A paused run, or one whose
    process died, is marked cancelled in the store. A finished run is left alone (an error).
    """
    opened, owned = _required_store(store, "cancel")
    try:
        record = _unfinished_run(opened, run_id)
        pid = _local_pid(record)
        if record.status == "running" and pid is not None and _alive(pid):
            os.kill(pid, signal.SIGINT)
            return f"asked process {pid} to cancel run {record.run_id}"
        host, _, recorded_pid = (record.owner or "").rpartition(":")
        if record.status == "running" and pid is None and host:
            raise ArgumentError(
                f"run {record.run_id} runs on {host} (process {recorded_pid}); cancel it there"
            )
        update = RunUpdate(record.run_id, status="cancelled", finished_at=time.time())
        update.error = "run cancelled: pardag cancel"
        opened.write(runs=[update])
        return f"run {record.run_id} ({record.status}) is now cancelled"
    finally:
        if owned:
            opened.close()
