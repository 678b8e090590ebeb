"""The commands that read the run store: ``runs``, ``show`` and ``watch`` (``logs``: its own
module).

They read what ``pardag run`` recorded (``.pardag/runs.db`` unless ``--store``, ``PARDAG_STORE``
or the config file says otherwise). ``--json`` output uses the keys of ``pardag run --json``.
Tables go to stdout; messages to stderr.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pardag import history
from pardag.cli.console import Session, reported, stderr, stdout
from pardag.cli.exits import exit_code
from pardag.cli.frames import user_frame
from pardag.cli.jsonout import run_json, with_mapping
from pardag.cli.loading import open_recorded_store
from pardag.cli.logs import checked_step, events_after, follow_run
from pardag.cli.options import ConfigOpt, DebugOpt, JsonOpt, RunIdArg, StoreOpt
from pardag.errors import ArgumentError
from pardag.events import Event, EventKind
from pardag.history import recorded_run
from pardag.progress import LiveProgress, grouped_rows, print_trimmed
from pardag.recording import StepHistory, latest_attempts, step_histories
from pardag.states import StepState
from pardag.store.base import EventRecord, RunRecord, StepRecord, Store, mask_url

__all__ = [
    "as_event",
    "print_run",
    "retry_hint",
    "runs_command",
    "show_command",
    "show_hint",
    "watch_command",
]


def runs_command(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started since: 2026-11-22 or 2h.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's runs.")] = None,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List recorded runs, newest first."""
    with reported(Session(debug)):
        history.check_status(status, "--status")
        with open_recorded_store(store, config) as opened:
            found = opened.list_runs(
                workflow=workflow, status=status, since=_since(since), limit=limit, org=org
            )
            if json_output:
                typer.echo(json.dumps([_run_row(r) for r in found], indent=2))
                return
            table = Table(box=None, pad_edge=False, header_style="bold")
            several = len({r.org for r in found}) > 1  # then each row says whose
            for column in ("run", *(["org"] * several), "workflow", "status", "started"):
                table.add_column(column, no_wrap=True)
            table.add_column("duration", no_wrap=True)
            for r in found:
                end = r.finished_at or time.time()
                table.add_row(
                    Text(r.run_id[:12]),
                    *([Text(r.org)] * several),
                    Text(r.workflow),
                    Text(_status(r)),
                    Text(_when(r.created_at)),
                    Text(f"{end - r.created_at:.2f}s"),
                )
            print_trimmed(stdout, table)
            for r in filter(history.owner_gone, found):
                stderr.print(f"run {r.run_id[:12]}: {history.owner_gone_hint(r)}", markup=False)


def show_command(
    run_id: RunIdArg,
    step: Annotated[
        str | None, typer.Argument(help="Only this step: every attempt, with its traceback.")
    ] = None,
    outputs: Annotated[bool, typer.Option("--outputs", help="Show each step's output.")] = False,
    instances: Annotated[
        bool,
        typer.Option(
            "--instances",
            help="List every instance of a mapped step, one a row (by default only the "
            "failed ones; the mapped step's row counts them).",
        ),
    ] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one run: its steps with states, times, attempts and errors (or one step's every
    attempt, with tracebacks). A mapped step's row counts its instances by state."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        steps = opened.get_steps(record.run_id)
        if step is not None:
            histories = step_histories(steps)
            one = checked_step(record, histories, step)
            logs = opened.get_logs(record.run_id, step)
            sizes = {a.attempt: 0 for a in one.attempts}
            for piece in logs:
                sizes[piece.attempt] = sizes.get(piece.attempt, 0) + len(piece.text.encode())
            doc = _step_document(record, one, sizes, histories)
            if json_output:
                typer.echo(json.dumps(doc, indent=2))
            else:
                _print_step(record, doc)
            return
        if json_output:
            shown = {**run_json(record, steps), "owner_gone": history.owner_gone(record)}
            typer.echo(json.dumps(shown, indent=2))
            return
        print_run(record, steps, outputs, instances)


def print_run(
    record: RunRecord, steps: list[StepRecord], outputs: bool = False, instances: bool = False
) -> None:
    """A recorded run as ``show`` prints it: a head line, a table of its steps in declaration
    order (a mapped step's instances under it, grouped as ``pardag run`` groups them unless
    ``instances``), where each failed step failed, and the run's error."""
    stdout.print(
        f"run {record.run_id}  {record.workflow}  {_status(record)}  {_when(record.created_at)}",
        markup=False,
    )
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["step", "state", "duration", "attempts", "reason / error"]
    for column in [*columns, *(["output"] if outputs else [])]:
        table.add_column(column)
    histories = step_histories(steps)
    said = {
        sid: (h.last.state, h.last.reason or h.last.error or "") for sid, h in histories.items()
    }
    for sid, (state, reason) in grouped_rows(said, fold=not instances).items():
        steps_of = histories[sid]
        last = steps_of.last
        duration = "" if steps_of.duration is None else f"{steps_of.duration:.2f}s"
        row = [sid, state, duration, str(last.attempt), reason]
        if outputs:
            row.append(last.output_json or "")
        table.add_row(*(Text(cell) for cell in row))
    print_trimmed(stdout, table)
    _print_failures(record, histories)
    if record.error:
        stdout.print(f"error: {record.error}", markup=False)
    if history.owner_gone(record):
        stdout.print(f"note: {history.owner_gone_hint(record)}", markup=False)


def _status(record: RunRecord) -> str:
    """The recorded status, and whether a running run's process is gone."""
    return record.status + (" (owner gone)" if history.owner_gone(record) else "")


def _print_failures(record: RunRecord, histories: Mapping[str, StepHistory]) -> None:
    """For each failed step, its error and where in the user's code it was raised; then how
    to see the whole traceback."""
    failed = [sid for sid, h in histories.items() if h.last.state == StepState.FAILED]
    for sid in failed:
        last = histories[sid].last
        stdout.print(f"\n{sid}: {last.reason or last.error or 'failed'}", markup=False)
        frame = user_frame(last.traceback)
        if frame is not None:
            stdout.print(f"  at {frame}", markup=False)
    if failed:
        stdout.print("\n" + show_hint(record.run_id, failed[0]), markup=False)


def show_hint(run_id: str, step: str) -> str:
    """The command that shows a failed step's traceback and every attempt (an instance id
    quoted for the shell: ``'process[3]'``)."""
    return f"pardag show {run_id[:12]} {shlex.quote(step)}  for the traceback and every attempt"


def retry_hint(run_id: str, store: str | None) -> str:
    """The command that retries a failed run once it is fixed (``store``: the --store given)."""
    where = f" --store {shlex.quote(mask_url(store))}" if store else ""
    return f"pardag retry {run_id[:12]}{where}  once fixed: runs what failed again, reuses the rest"


def _step_document(
    record: RunRecord,
    one: StepHistory,
    sizes: Mapping[int, int],
    histories: Mapping[str, StepHistory],
) -> dict[str, Any]:
    """One step of a recorded run, every attempt, as ``show RUN STEP --json`` gives it; an
    instance names its mapped step (``parent``), a mapped step counts its ``instances``."""
    sid = one.last.step_id
    return {
        "run_id": record.run_id,
        "step": sid,
        "state": one.last.state,
        "started_at": one.started_at,
        "finished_at": one.last.finished_at,
        "duration": one.duration,
        "log": f"pardag logs {record.run_id[:12]} {shlex.quote(sid)}",
        "attempts": [
            {
                "attempt": a.attempt,
                "state": a.state,
                "executor": a.executor,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "reason": a.reason,
                "error": a.error,
                "where": user_frame(a.traceback),
                "traceback": a.traceback,
                "log_bytes": sizes.get(a.attempt, 0),
            }
            for a in one.attempts
        ],
        **_mapping_of(sid, histories),
    }


def _mapping_of(sid: str, histories: Mapping[str, StepHistory]) -> dict[str, Any]:
    """``{"parent": ...}`` for an instance, ``{"instances": N}`` for a mapped step, else ``{}``
    (``with_mapping``'s keys, for one step)."""
    shaped: dict[str, dict[str, Any]] = {s: {} for s in histories}
    with_mapping(shaped)
    return shaped[sid]


def _print_step(record: RunRecord, doc: Mapping[str, Any]) -> None:
    """One step of a recorded run (``_step_document``), every attempt: state, times, error,
    traceback, log size; an instance's mapped step, a mapped step's number of instances."""
    count = len(doc["attempts"])
    stdout.print(
        f"step {doc['step']} of run {record.run_id}  {record.workflow}: {doc['state']}, "
        f"{count} attempt{'' if count == 1 else 's'}",
        markup=False,
    )
    if "parent" in doc:
        stdout.print(f"an instance of mapped step {doc['parent']}", markup=False)
    if "instances" in doc:
        many = doc["instances"]
        stdout.print(
            f"mapped: {many} instance{'' if many == 1 else 's'} "
            f"(pardag show {record.run_id[:12]} --instances lists them)",
            markup=False,
        )
    for a in doc["attempts"]:
        took = ""
        if a["started_at"] is not None and a["finished_at"] is not None:
            took = f" ({a['finished_at'] - a['started_at']:.2f}s)"
        start = "" if a["started_at"] is None else f" started {_when(a['started_at'])}"
        lines = [f"\nattempt {a['attempt']}: {a['state']}{start}{took} on {a['executor']}"]
        lines += [f"  {k}: {a[k]}" for k in ("reason", "error", "where") if a[k]]
        lines.append(f"  log: {a['log_bytes']:,} bytes ({doc['log']})")
        if a["traceback"]:
            lines.append("  " + a["traceback"].rstrip().replace("\n", "\n  "))
        stdout.print("\n".join(lines), markup=False)


def watch_command(
    run_id: RunIdArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Watch a run started elsewhere, live on a terminal, until it stops running; then show it."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        total = _step_count(record, opened)
        live = LiveProgress(stderr, record.workflow, total) if stderr.is_terminal else None
        with live or contextlib.nullcontext():
            for e in follow_run(opened, record, events_after(opened, record.run_id, None)):
                if live is not None:
                    live.on_event(as_event(e))
        record = recorded_run(opened, record.run_id)
        print_run(record, opened.get_steps(record.run_id))
    raise typer.Exit(exit_code(record.status))  # as `pardag run` would have exited


def _step_count(record: RunRecord, opened: Store) -> int:
    """How many steps the run has: from its definition, else from what it recorded."""
    try:
        return len(history.workflow_of(record).steps)
    except Exception:  # a file or module gone since: the steps seen will do
        return len(latest_attempts(opened.get_steps(record.run_id)))


def as_event(e: EventRecord) -> Event:
    """A recorded event as the live view takes it (its time moved onto the monotonic clock)."""
    return Event(
        EventKind(e.kind),
        e.run_id,
        time.monotonic() - (time.time() - e.at),
        e.step,
        e.attempt or 0,
        json.loads(e.data_json or "{}"),
    )


def _run_row(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "workflow": r.workflow,
        "org": r.org,
        "status": r.status,
        "error": r.error,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "source": r.source,
        "owner_gone": history.owner_gone(r),
    }


def _when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _since(text: str | None) -> float | None:
    """``2026-11-22`` (a date or ISO time) or ``90m`` / ``2h`` ago, as a timestamp."""
    if text is None:
        return None
    from pardag.units import parse_duration

    try:
        return time.time() - parse_duration(text, "--since")
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ArgumentError(
            f"Invalid --since value {text!r}: expected a date like 2026-11-22, an ISO time, "
            "or a duration like 2h"
        ) from None
