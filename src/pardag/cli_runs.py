"""The run-store commands of ``pardag``: ``runs``, ``show``, ``watch``, ``logs``, ``resume``,
``approve``, ``reject`` and ``cancel``.

They read what ``pardag run`` recorded (``.pardag/runs.db`` unless ``--store``, ``PARDAG_STORE``
or the config file says otherwise). ``--json`` output uses the keys of ``pardag run --json``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

import pardag
from pardag import history
from pardag.cli import (
    ConfigOpt,
    DebugOpt,
    StoreOpt,
    _finish,
    _reported,
    _Session,
    _stderr,
    app,
)
from pardag.config import resolve
from pardag.errors import ArgumentError
from pardag.events import Event, EventKind
from pardag.history import recorded_run
from pardag.progress import LiveProgress, print_trimmed
from pardag.recording import latest_attempts
from pardag.results import RunResult
from pardag.store import DEFAULT_PATH, open_store
from pardag.store.base import EventRecord, RunRecord, StepRecord, Store

__all__ = ["run_json"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


RunIdArg = Annotated[str, typer.Argument(help="The run's id (or its first 6+ characters).")]


def _open(store: str | None, config: Any) -> Store:
    """The store named by --store, else PARDAG_STORE or the config file, else the default."""
    settings = resolve(None, flags={"store": store}, config=config)
    return open_store(settings.store or str(DEFAULT_PATH), create=False)


def _go_on(opened: Store, run_id: str, call: Callable[[str], RunResult]) -> RunResult:
    """Continue run ``run_id`` (a prefix will do) with ``call``; its full id goes first on
    stderr, as with ``pardag run``."""
    record = recorded_run(opened, run_id)
    _stderr.print(f"run {record.run_id}", markup=False)
    return call(record.run_id)


@app.command("runs")
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
    with _reported(_Session(debug)):
        history.check_status(status, "--status")
        with _open(store, config) as opened:
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
                    Text(r.status),
                    Text(_when(r.created_at)),
                    Text(f"{end - r.created_at:.2f}s"),
                )
            print_trimmed(_stderr, table)


@app.command("show")
def show_command(
    run_id: RunIdArg,
    outputs: Annotated[bool, typer.Option("--outputs", help="Show each step's output.")] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one run: its steps with states, times, attempts and errors."""
    with _reported(_Session(debug)), _open(store, config) as opened:
        record = recorded_run(opened, run_id)
        steps = opened.get_steps(record.run_id)
        if json_output:
            typer.echo(json.dumps(run_json(record, steps), indent=2))
            return
        _print_run(record, steps, outputs)


def _print_run(record: RunRecord, steps: list[StepRecord], outputs: bool = False) -> None:
    """A recorded run as ``show`` prints it: a head line, a table of its steps, its error."""
    _stderr.print(
        f"run {record.run_id}  {record.workflow}  {record.status}  {_when(record.created_at)}",
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
    print_trimmed(_stderr, table)
    if record.error:
        _stderr.print(f"error: {record.error}", markup=False)


@app.command("watch")
def watch_command(
    run_id: RunIdArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Watch a run started elsewhere, live on a terminal, until it stops running; then show it."""
    with _reported(_Session(debug)), _open(store, config) as opened:
        record = recorded_run(opened, run_id)
        total = _step_count(record, opened)
        live = LiveProgress(_stderr, record.workflow, total) if _stderr.is_terminal else None
        with live or contextlib.nullcontext():
            for e in _tail(opened, record, None, follow=True):
                if live is not None:
                    live.on_event(as_event(e))
        record = recorded_run(opened, record.run_id)
        _print_run(record, opened.get_steps(record.run_id))
    raise typer.Exit(_RUN_EXIT.get(record.status, 1))


_RUN_EXIT = {"succeeded": 0, "paused": 3, "cancelled": 130}
"""Exit codes of ``watch`` by the run's status, as ``pardag run`` would have exited."""


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
        if not follow or status != "running":
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


@app.command("logs")
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
    with _reported(_Session(debug)), _open(store, config) as opened:
        try:
            for e in _tail(opened, recorded_run(opened, run_id), step, follow=follow):
                line = {"seq": e.seq, "at": e.at, "kind": e.kind, "step": e.step}
                line |= {"attempt": e.attempt, **json.loads(e.data_json or "{}")}
                typer.echo(json.dumps(line))
        except _ProcessGone as exc:
            _stderr.print(str(exc), markup=False)
            raise typer.Exit(1) from None


_FOLLOW_EVERY = 0.25
"""Seconds between two looks at the store while following a run."""


@app.command("resume")
def resume_command(
    run_id: Annotated[
        str | None, typer.Argument(help="The run's id (or its first 6+ characters).")
    ] = None,
    due: Annotated[
        bool,
        typer.Option(
            "--due",
            help="Resume every paused run whose approval wait is over (for cron), applying "
            "its on_timeout.",
        ),
    ] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Finish a run whose process died: what succeeded is kept, the rest runs."""
    session = _Session(debug)
    if (run_id is None) == (not due):
        with _reported(session):
            raise ArgumentError("give a run id, or --due (not both): pardag resume RUN_ID")
    codes = []
    with _reported(session), _open(store, config) as opened:
        todo = history.due_runs(opened) if due else [run_id]
        if not todo:
            _stderr.print("no paused run has an approval wait that is over", markup=False)
        for rid in todo:
            assert rid is not None
            result = _go_on(opened, rid, lambda found: pardag.resume(found, store=opened))
            codes.append(_finish(result, json_output, session))
    raise typer.Exit(_worst(codes))


def _worst(codes: list[int]) -> int:
    """One exit code for several runs: a failure before a pause before success."""
    for code in (130, 1, 3):
        if code in codes:
            return code
    return max(codes, default=0)


@app.command("approve")
def approve_command(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    input_: Annotated[
        str,
        typer.Option("--input", help="The answer as JSON (the step's output).", metavar="JSON"),
    ] = "true",
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Answer a paused approval step and continue its run in this process."""
    session = _Session(debug)
    with _reported(session):
        try:
            value = json.loads(input_)
        except json.JSONDecodeError as exc:
            raise ArgumentError(
                f"Invalid --input value {input_!r}: expected JSON ({exc.msg}), e.g. "
                """--input '{"approved": true}' or --input '"staging"'"""
            ) from None
        with _open(store, config) as opened:
            answer = lambda rid: pardag.approve(rid, step, value, store=opened)  # noqa: E731
            result = _go_on(opened, run_id, answer)
    raise typer.Exit(_finish(result, json_output, session))


@app.command("reject")
def reject_command(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    reason: Annotated[str, typer.Option(help="Why; the step fails with it.")] = "",
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Reject a paused approval step (it fails) and continue its run in this process."""
    session = _Session(debug)
    with _reported(session), _open(store, config) as opened:
        result = _go_on(opened, run_id, lambda rid: pardag.reject(rid, step, reason, store=opened))
    raise typer.Exit(_finish(result, json_output, session))


@app.command("cancel")
def cancel_command(
    run_id: RunIdArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Cancel a run: its process (on this machine) stops it cleanly; a paused or dead run is
    marked cancelled."""
    with _reported(_Session(debug)), _open(store, config) as opened:
        record = recorded_run(opened, run_id)
        _stderr.print(history.cancel(record.run_id, store=opened), markup=False)


# -- JSON and text ----------------------------------------------------------------------------


def run_json(record: RunRecord, steps: list[StepRecord]) -> dict[str, Any]:
    """A recorded run with the keys of ``pardag run --json``."""
    latest = latest_attempts(steps)
    outputs = {
        sid: json.loads(s.output_json)
        for sid, s in latest.items()
        if s.state == "succeeded" and s.output_json is not None
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
                "duration": _seconds(s),
                "error": s.error,
                "cached": s.cached,
            }
            for sid, s in latest.items()
        },
    }


def _run_row(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "workflow": r.workflow,
        "status": r.status,
        "error": r.error,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "source": r.source,
    }


def _seconds(s: StepRecord) -> float | None:
    if s.started_at is None or s.finished_at is None:
        return None
    return s.finished_at - s.started_at


def _duration(s: StepRecord) -> str:
    seconds = _seconds(s)
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
