"""``pardag run``: run a workflow file recorded in the run store, show it, exit with its code.

How a finished run is shown and what the command exits with (``finish``) is shared with the
commands that continue a recorded run (``resume``, ``approve``, ``reject``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pardag.cli.console import Session, error, reported, stderr, stdout
from pardag.cli.exits import ExitCode, exit_code
from pardag.cli.jsonout import JsonLines, dumps, result_json
from pardag.cli.loading import prepare
from pardag.cli.options import ConfigOpt, DebugOpt, FileArg, SecretsFileOpt, StoreOpt
from pardag.cli.params import run_params
from pardag.cli.runs import retry_hint, show_hint
from pardag.cli.waiting import answer_lines
from pardag.config import ResolvedSettings
from pardag.errors import ArgumentError, StepFailed
from pardag.events import Event, EventKind, Listener
from pardag.model import Step, Workflow, param_problem
from pardag.options import RunOptions
from pardag.progress import LiveProgress, print_summary, print_trimmed
from pardag.results import RunResult
from pardag.states import RunStatus
from pardag.store import open_store
from pardag.worker import submit

__all__ = ["finish", "run_command"]


def run_command(
    file: FileArg,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events", help="Write every event to this file, JSON lines.", metavar="FILE"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Set a param: key=value (repeatable; a.b=1 sets nested keys).",
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="dynamic, levels or sequential.", metavar="MODE")
    ] = None,
    max_concurrency: Annotated[
        str | None, typer.Option(help="Most steps running at once; 0 = auto.", metavar="N")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(help="threads, processes, inline or dask.", metavar="EXECUTOR"),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address",
            help="The Dask scheduler for dask steps: tcp://host:8786 (default: a LocalCluster).",
            metavar="ADDRESS",
        ),
    ] = None,
    keep_outputs_on_cluster: Annotated[
        bool,
        typer.Option(
            "--keep-outputs-on-cluster",
            help="Leave dask steps' outputs on the cluster when nothing here reads them.",
        ),
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            help="Limit for the whole run: 30s, 2m, ...; none = no limit.", metavar="DURATION"
        ),
    ] = None,
    on_failure: Annotated[
        str | None, typer.Option(help="fail_fast or continue.", metavar="POLICY")
    ] = None,
    http_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--http-allow",
            help="Where HTTP steps may connect: hosts, IPs, CIDRs, :ports (repeatable, or a,b).",
            metavar="ENTRY",
        ),
    ] = None,
    http_deny: Annotated[
        list[str] | None,
        typer.Option(
            "--http-deny",
            help="Where HTTP steps may not connect; 'private' = the local network.",
            metavar="ENTRY",
        ),
    ] = None,
    show_settings: Annotated[
        bool,
        typer.Option("--show-settings", help="Print each setting and its source; do not run."),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Run steps that have cache set instead of taking their stored outputs "
            "(their fresh outputs still refresh the cache).",
        ),
    ] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Do not run it here: put it in the run store's queue for a worker (pardag "
            "worker) and print its id.",
        ),
    ] = False,
    org: Annotated[
        str, typer.Option("--org", help="With --queue: the run's organisation.", metavar="ORG")
    ] = "default",
    store: StoreOpt = None,
    secrets_file: SecretsFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a workflow file and show its progress; exit 0 if it succeeded.

    The run is recorded in the run store (.pardag/runs.db unless --store, PARDAG_STORE or the
    config file says otherwise); its id is the first line on stderr. With --queue it is only
    queued there, and its id printed on stdout at once.
    """
    session = Session(debug)
    flags = {
        "mode": mode,
        "max_concurrency": max_concurrency,
        "executor": executor,
        "timeout": timeout,
        "on_failure": on_failure,
        "http.allow": http_allow,
        "http.deny": http_deny,
        "dask.address": dask_address,
        "keep_outputs_on_cluster": True if keep_outputs_on_cluster else None,
        "store": store,
        "debug": True if debug else None,
    }
    with reported(session):
        wf, settings = prepare(file, config, flags, validate=not show_settings)
        session.debug = settings.debug
        if show_settings:
            _print_settings(settings, json_output)
            return
        params = run_params(wf.params, set_ or [], functools.partial(param_problem, wf))
        store_url = settings.store
        if queue or org != "default":
            _queue(wf, params, store_url, org, queue, events, json_output)
            return
        options: RunOptions = {"cache": not no_cache, "secrets_file": secrets_file}
        result = _run_watched(wf, params, events, store_url, options)
    raise typer.Exit(finish(result, json_output, session, wf.steps, store))


def _run_watched(
    wf: Workflow, params: dict[str, Any], events: Path | None, store: str, options: RunOptions
) -> RunResult:
    """Run ``wf`` recorded in ``store``, with the events file and, on a terminal, the live
    view as listeners; the run's id goes first on stderr."""
    listeners: list[Listener] = [_RunIdPrinter()]
    with contextlib.ExitStack() as stack:
        opened = stack.enter_context(open_store(store))
        if events is not None:
            listeners.append(JsonLines(stack.enter_context(_open_events(events))))
        if stderr.is_terminal:
            live = LiveProgress(stderr, wf.name, len(wf.steps))
            listeners.append(stack.enter_context(live))
        try:
            options |= {"listeners": listeners, "params": params, "store": opened}
            return wf.run(**options)
        except KeyboardInterrupt:  # the second Ctrl-C: the run did not wait for its steps
            stack.close()
            error(
                "left at the second Ctrl-C without waiting for the steps still running; "
                "the run is recorded as cancelled"
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None


def _queue(
    wf: Workflow,
    params: dict[str, Any],
    store: str,
    org: str,
    queue: bool,
    events: Path | None,
    json_output: bool,
) -> None:
    """``--queue``: submit the run for a worker and print its id (JSON with ``--json``)."""
    if not queue:
        raise ArgumentError(f"--org {org} names the organisation of a queued run; add --queue")
    if events is not None:
        raise ArgumentError(
            "--events writes the events of a run that runs here, and --queue runs it in a "
            "worker; follow it with `pardag watch RUN_ID` instead"
        )
    run_id = submit(wf, store=store, params=params, org=org)
    if json_output:
        sys.stdout.write(dumps({"run_id": run_id, "status": "queued", "org": org}) + "\n")
    else:
        stdout.print(run_id, markup=False)


class _RunIdPrinter:
    """Prints ``run <id>`` on stderr when the run starts (scripts read it from there)."""

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.RUN_STARTED:
            stderr.print(f"run {event.run}", markup=False)


@contextlib.contextmanager
def _open_events(path: Path) -> Iterator[IO[str]]:
    try:
        stream = path.open("w", encoding="utf-8", buffering=1)  # a line at a time: tail -f
    except OSError as exc:
        raise ArgumentError(
            f"cannot write the --events file {path}: {exc.strerror}; give a writable path"
        ) from None
    with stream:
        yield stream


def finish(
    result: RunResult,
    json_output: bool,
    session: Session,
    steps: Mapping[str, Step] | None = None,
    store: str | None = None,
) -> int:
    """Print the result (a table or JSON, on stdout) and return the exit code.

    A paused run also gets, on stderr, each waiting step's question and the commands that
    answer it (``steps``, the workflow's, give the answer's shape; ``store`` is the
    ``--store`` given, which the commands repeat)."""
    if json_output:
        sys.stdout.write(dumps(result_json(result), indent=2) + "\n")
    else:
        print_summary(stdout, result)
        if result.ok:
            stdout.print(f"output: {_short(result.final_output)}", markup=False)
    if result.error is not None and not result.ok:
        failed = result.error if isinstance(result.error, StepFailed) else None
        if session.debug and failed is not None and failed.traceback:
            stderr.print(failed.traceback, end="", markup=False)
        error(str(result.error))
        if failed is not None and not session.debug:
            stderr.print(show_hint(result.run_id, failed.step), markup=False)
            stderr.print(retry_hint(result.run_id, store), markup=False)
    if result.status is RunStatus.PAUSED:
        for line in answer_lines(result, steps, store):
            stderr.print(line, markup=False)
    return exit_code(result.status)


def _short(value: Any, limit: int = 200) -> str:
    text = dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print_settings(settings: ResolvedSettings, json_output: bool) -> None:
    """The settings table (or JSON), then which config file was read and how it was chosen."""
    path = str(settings.config_file) if settings.config_file else None
    if json_output:
        shown = {
            **settings.as_json(),
            "config_file": {"value": path, "source": settings.config_note},
        }
        sys.stdout.write(json.dumps(shown, default=str, indent=2) + "\n")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("setting", "value", "source"):
        table.add_column(column, no_wrap=True)
    for row in settings.rows():
        table.add_row(*(Text(cell) for cell in row))  # Text: "[tool.pardag]" is not markup
    print_trimmed(Console(highlight=False), table)
    stdout.print(f"config file: {path or 'none'} ({settings.config_note})", markup=False)
