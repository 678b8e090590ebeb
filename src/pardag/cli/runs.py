"""The commands that read the run store: ``runs``, ``show``, ``watch`` and ``logs``.

They read what ``pardag run`` recorded (``.pardag/runs.db`` unless ``--store``, ``PARDAG_STORE``
or the config file says otherwise). ``--json`` output uses the keys of ``pardag run --json``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pardag import history
from pardag.cli.console import Session, reported, stderr
from pardag.cli.exits import exit_code
from pardag.cli.jsonout import run_json, step_seconds
from pardag.cli.loading import open_recorded_store
from pardag.cli.options import ConfigOpt, DebugOpt, JsonOpt, RunIdArg, StoreOpt
from pardag.errors import ArgumentError
from pardag.events import Event, EventKind
from pardag.history import recorded_run
from pardag.progress import LiveProgress, print_trimmed
from pardag.recording import latest_attempts
from pardag.states import RunStatus
from pardag.store.base import EventRecord, RunRecord, StepRecord, Store

__all__ = ["as_event", "logs_command", "runs_command", "show_command", "watch_command"]


def runs_command(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs started since: 2026-11-22 or 2h.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
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
                workflow=workflow, status=status, since=_since(since), limit=limit
            )
            if json_output:
                typer.echo(json.dumps([_run_row(r) for r in found], indent=2))
                return
            table = Table(box=None, pad_edge=False, header_style="bold")
            for column in ("run", "workflow", "status", "started", "duration"):
                table.add_column(column, no_wrap=True)
            for r in found:
                end = r.finished_at or time.time()
                table.add_row(
                    Text(r.run_id[:12]),
                    Text(r.workflow),
                    Text(_status(r)),
                    Text(_when(r.created_at)),
                    Text(f"{end - r.created_at:.2f}s"),
                )
            print_trimmed(stderr, table)
            for r in filter(history.owner_gone, found):
                stderr.print(f"run {r.run_id[:12]}: {history.owner_gone_hint(r)}", markup=False)


def show_command(
    run_id: RunIdArg,
    outputs: Annotated[bool, typer.Option("--outputs", help="Show each step's output.")] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one run: its steps with states, times, attempts and errors."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        steps = opened.get_steps(record.run_id)
        if json_output:
            shown = {**run_json(record, steps), "owner_gone": history.owner_gone(record)}
            typer.echo(json.dumps(shown, indent=2))
            return
        _print_run(record, steps, outputs)


def _print_run(record: RunRecord, steps: list[StepRecord], outputs: bool = False) -> None:
    """A recorded run as ``show`` prints it: a head line, a table of its steps, its error."""
    stderr.print(
        f"run {record.run_id}  {record.workflow}  {_status(record)}  {_when(record.created_at)}",
        markup=False,
    )
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ["step", "state", "duration", "attempts", "reason / error"]
    for column in [*columns, *(["output"] if outputs else [])]:
        table.add_column(column)
    for sid, last in latest_attempts(steps).items():
        row = [sid, last.state, _duration(last), str(last.attempt), last.error or last.reason or ""]
        if outputs:
            row.append(last.output_json or "")
        table.add_row(*(Text(cell) for cell in row))
    print_trimmed(stderr, table)
    if record.error:
        stderr.print(f"error: {record.error}", markup=False)
    if history.owner_gone(record):
        stderr.print(f"note: {history.owner_gone_hint(record)}", markup=False)


def _status(record: RunRecord) -> str:
    """The recorded status, and whether a running run's process is gone."""
    return record.status + (" (owner gone)" if history.owner_gone(record) else "")


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
            for e in _tail(opened, record, None, follow=True):
                if live is not None:
                    live.on_event(as_event(e))
        record = recorded_run(opened, record.run_id)
        _print_run(record, opened.get_steps(record.run_id))
    raise typer.Exit(exit_code(record.status))  # as `pardag run` would have exited


def _step_count(record: RunRecord, opened: Store) -> int:
    """How many steps the run has: from its definition, else from what it recorded."""
    try:
        return len(history.workflow_of(record).steps)
    except Exception:  # a file or module gone since: the steps seen will do
        return len(latest_attempts(opened.get_steps(record.run_id)))


class _ProcessGone(ArgumentError):
    """The followed run is recorded as running, but its process on this machine is dead."""


def _tail(
    opened: Store, record: RunRecord, step: str | None, *, follow: bool
) -> Iterator[EventRecord]:
    """The run's events (``step``'s only, when given); with ``follow``, the new ones too as
    they are committed, until the run stops running. Raises ``_ProcessGone``."""
    last = 0
    while True:
        status = record.status  # read first: the events written with it are read below
        for e in opened.get_events(record.run_id, step, after=last):
            last = e.seq
            yield e
        if not follow or status != RunStatus.RUNNING:
            return
        if history.process_gone(record):
            raise _ProcessGone(
                f"run {record.run_id}: its process is gone; `pardag resume "
                f"{record.run_id[:12]}` finishes it"
            )
        time.sleep(_FOLLOW_EVERY)
        record = recorded_run(opened, record.run_id)


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


def logs_command(
    run_id: RunIdArg,
    step: Annotated[str | None, typer.Argument(help="Only this step's events.")] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new events until the run stops running."
        ),
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print a run's events as JSON lines (one step's, when given)."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        try:
            for e in _tail(opened, recorded_run(opened, run_id), step, follow=follow):
                line = {"seq": e.seq, "at": e.at, "kind": e.kind, "step": e.step}
                line |= {"attempt": e.attempt, **json.loads(e.data_json or "{}")}
                typer.echo(json.dumps(line))
        except _ProcessGone as exc:
            stderr.print(str(exc), markup=False)
            raise typer.Exit(1) from None


_FOLLOW_EVERY = 0.25
"""Seconds between two looks at the store while following a run."""


def _run_row(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "workflow": r.workflow,
        "status": r.status,
        "error": r.error,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "source": r.source,
        "owner_gone": history.owner_gone(r),
    }


def _duration(s: StepRecord) -> str:
    seconds = step_seconds(s)
    return "" if seconds is None else f"{seconds:.2f}s"


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
