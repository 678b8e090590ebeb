"""``pardag logs``: a step's captured log, or a run's events; and following a run as the
store records it (``watch`` follows the same way).

``pardag logs RUN STEP`` prints what the step wrote (its stdout and stderr, its ``print()``
and ``logging`` records: see ``pardag.steplog``), each attempt under a heading;
``pardag logs RUN`` (or ``--events``) prints the events as JSON lines, in the schema of
``pardag run --events FILE``. ``--follow`` keeps reading the store until the run stops.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, TypeVar

import typer

from pardag import history
from pardag.cli.console import Session, reported, stderr
from pardag.cli.jsonout import dumps, event_json
from pardag.cli.loading import open_recorded_store
from pardag.cli.options import ConfigOpt, DebugOpt, JsonOpt, RunIdArg, StoreOpt
from pardag.errors import ArgumentError
from pardag.history import recorded_run
from pardag.instances import instance_parent, instances_of
from pardag.recording import StepHistory, step_histories
from pardag.states import RunStatus
from pardag.store.base import EventRecord, LogRecord, RunRecord, Store

__all__ = ["ProcessGone", "checked_step", "events_after", "follow_run", "logs_command"]

FOLLOW_EVERY = 0.25
"""Seconds between two looks at the store while following a run."""

T = TypeVar("T")


class ProcessGone(ArgumentError):
    """The followed run is recorded as running, but its process on this machine is dead."""


def follow_run(
    opened: Store, record: RunRecord, read: Callable[[], list[T]], *, follow: bool = True
) -> Iterator[T]:
    """What ``read`` finds new, again and again while the run is queued or running (once
    without ``follow``). Raises ``ProcessGone`` when the run's process died without ending it."""
    while True:
        status = record.status  # read first: what was written with it is read below
        yield from read()
        if not follow or status not in (RunStatus.RUNNING, RunStatus.QUEUED):
            return
        if history.process_gone(record):
            raise ProcessGone(
                f"run {record.run_id}: its process is gone; `pardag resume "
                f"{record.run_id[:12]}` finishes it"
            )
        time.sleep(FOLLOW_EVERY)
        record = recorded_run(opened, record.run_id)


def events_after(opened: Store, run_id: str, step: str | None) -> Callable[[], list[EventRecord]]:
    """A reader of the run's events (``step``'s only, when given) not read before."""
    last = 0

    def read() -> list[EventRecord]:
        nonlocal last
        found = opened.get_events(run_id, step, after=last)
        if found:
            last = found[-1].seq
        return found

    return read


def _log_after(opened: Store, run_id: str, step: str) -> Callable[[], list[LogRecord]]:
    """A reader of the step's log pieces not read before."""
    last = (0, 0)

    def read() -> list[LogRecord]:
        nonlocal last
        found = opened.get_logs(run_id, step, after=last)
        if found:
            last = (found[-1].attempt, found[-1].seq)
        return found

    return read


def logs_command(
    run_id: RunIdArg,
    step: Annotated[
        str | None, typer.Argument(help="The step whose log to print (all events if none).")
    ] = None,
    events: Annotated[
        bool, typer.Option("--events", help="Print the step's events instead of its log.")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing what comes until the run stops."),
    ] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print a step's log (what it printed and logged, each attempt headed), or the run's
    events as JSON lines."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        if step is not None:
            checked_step(record, step_histories(opened.get_steps(record.run_id)), step)
        try:
            if step is None or events:
                _print_events(opened, record, step, follow)
            else:
                _print_log(opened, record, step, follow, json_output)
        except ProcessGone as exc:
            stderr.print(str(exc), markup=False)
            raise typer.Exit(1) from None


def checked_step(record: RunRecord, histories: Mapping[str, StepHistory], step: str) -> StepHistory:
    """The history of ``step`` in the run; an ArgumentError naming the run's steps (and the
    closest one) when it has no such step."""
    found = histories.get(step)
    if found is not None:
        return found
    parent = instance_parent(step, histories)
    mine = instances_of(histories).get(parent) if parent is not None else None
    if mine:  # an instance past the end of its list
        raise ArgumentError(
            f"run {record.run_id[:12]} has no step {step!r}; mapped step {parent!r} has "
            f"{len(mine)} instances, {mine[0]} to {mine[-1]}"
        )
    names = list(histories)
    close = difflib.get_close_matches(step, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "none recorded"
    raise ArgumentError(f"run {record.run_id[:12]} has no step {step!r}; {hint}its steps: {listed}")


def _print_events(opened: Store, record: RunRecord, step: str | None, follow: bool) -> None:
    for e in follow_run(opened, record, events_after(opened, record.run_id, step), follow=follow):
        data = json.loads(e.data_json or "{}")
        typer.echo(dumps(event_json(e.run_id, e.seq, e.at, e.kind, (e.step, e.attempt), data)))


def _print_log(opened: Store, record: RunRecord, step: str, follow: bool, as_json: bool) -> None:
    """The step's log as written, a heading before each attempt's (JSON lines with
    ``--json``); a step that wrote nothing says so on stderr."""
    attempt, open_line = 0, False
    for piece in follow_run(opened, record, _log_after(opened, record.run_id, step), follow=follow):
        if as_json:
            fields = ("run_id", "step_id", "attempt", "seq", "stream", "text")
            typer.echo(json.dumps({f: getattr(piece, f) for f in fields}))
            continue
        if piece.attempt != attempt:
            if open_line:
                typer.echo("")
            attempt = piece.attempt
            typer.echo(f"--- {step}, attempt {attempt} ---")
        typer.echo(piece.text, nl=False)
        open_line = not piece.text.endswith("\n")
    if open_line:
        typer.echo("")
    if attempt == 0 and not as_json:
        stderr.print(f"step {step!r} of run {record.run_id[:12]} logged nothing", markup=False)
