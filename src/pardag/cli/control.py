"""The commands that act on a recorded run: ``resume``, ``approve``, ``reject``, ``retry`` and
``cancel``.

The first four continue the run in this process and end as ``pardag run`` does (``finish``):
the result, then the exit code of its status (``retry --queue`` leaves it to a worker).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated

import typer

import pardag
from pardag import history
from pardag.cli.console import Session, reported, stderr, stdout
from pardag.cli.exits import ExitCode, worst
from pardag.cli.jsonout import dumps
from pardag.cli.loading import open_recorded_store
from pardag.cli.options import ConfigOpt, DebugOpt, JsonOpt, RunIdArg, SecretsFileOpt, StoreOpt
from pardag.cli.run import finish
from pardag.errors import ArgumentError
from pardag.history import recorded_run
from pardag.model import Step
from pardag.rerun import plan_retry
from pardag.results import RunResult
from pardag.states import RunStatus
from pardag.store.base import Store

__all__ = [
    "approve_command",
    "cancel_command",
    "reject_command",
    "resume_command",
    "retry_command",
]


def _go_on(
    opened: Store, run_id: str, call: Callable[[str], RunResult]
) -> tuple[RunResult, Mapping[str, Step] | None]:
    """Continue run ``run_id`` (a prefix will do) with ``call``; its full id goes first on
    stderr, as with ``pardag run``. With the result come the workflow's steps when the run
    paused again (``finish`` shows the answer each waiting step expects)."""
    record = recorded_run(opened, run_id)
    stderr.print(f"run {record.run_id}", markup=False)
    result = call(record.run_id)
    if result.status is not RunStatus.PAUSED:
        return result, None
    try:
        return result, history.workflow_of(record).steps
    except Exception:  # its file or module is gone since: the commands are shown without it
        return result, None


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
    secrets_file: SecretsFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Finish a run whose process died: what succeeded is kept, the rest runs."""
    session = Session(debug)
    if (run_id is None) == (not due):
        with reported(session):
            raise ArgumentError("give a run id, or --due (not both): pardag resume RUN_ID")
    codes = []
    with reported(session), open_recorded_store(store, config) as opened:
        todo = history.due_runs(opened) if due else [run_id]
        if not todo:
            stderr.print("no paused run has an approval wait that is over", markup=False)
        for rid in todo:
            assert rid is not None
            result, steps = _go_on(opened, rid, _resume(opened, secrets_file))
            codes.append(finish(result, json_output, session, steps, store))
    raise typer.Exit(worst(codes))


def _resume(opened: Store, secrets_file: Path | None) -> Callable[[str], RunResult]:
    return lambda found: pardag.resume(found, store=opened, secrets_file=secrets_file)


def approve_command(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    input_: Annotated[
        str,
        typer.Option("--input", help="The answer as JSON (the step's output).", metavar="JSON"),
    ] = "true",
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    secrets_file: SecretsFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Answer a paused approval step and continue its run in this process."""
    session = Session(debug)
    with reported(session):
        try:
            value = json.loads(input_)
        except json.JSONDecodeError as exc:
            raise ArgumentError(
                f"Invalid --input value {input_!r}: expected JSON ({exc.msg}), e.g. "
                """--input '{"approved": true}' or --input '"staging"'"""
            ) from None
        with open_recorded_store(store, config) as opened:
            answer = functools.partial(
                pardag.approve, step_id=step, value=value, store=opened, secrets_file=secrets_file
            )
            result, steps = _go_on(opened, run_id, answer)
    raise typer.Exit(finish(result, json_output, session, steps, store))


def reject_command(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="The approval step waiting for an answer.")],
    reason: Annotated[str, typer.Option(help="Why; the step fails with it.")] = "",
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    secrets_file: SecretsFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Reject a paused approval step (it fails) and continue its run in this process."""
    session = Session(debug)
    with reported(session), open_recorded_store(store, config) as opened:
        refuse = functools.partial(
            pardag.reject, step_id=step, reason=reason, store=opened, secrets_file=secrets_file
        )
        result, steps = _go_on(opened, run_id, refuse)
    raise typer.Exit(finish(result, json_output, session, steps, store))


def retry_command(
    run_id: RunIdArg,
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="What runs again: failed (the steps that failed, were cancelled or were "
            "skipped because of a failure), all, or a step's id.",
            metavar="failed|all|STEP",
        ),
    ] = "failed",
    no_downstream: Annotated[
        bool,
        typer.Option(
            "--no-downstream",
            help="Run only those steps again, not the steps that depend on them.",
        ),
    ] = False,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Do not run it here: put it back in the queue for a worker."),
    ] = False,
    json_output: JsonOpt = False,
    store: StoreOpt = None,
    secrets_file: SecretsFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Retry a finished run, as a new attempt of the same run: what failed (or --from STEP and
    what depends on it) runs again; the outputs of the steps that succeeded are reused."""
    session = Session(debug)
    with reported(session), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        plan = plan_retry(opened, record, from_, not no_downstream)
        kept = f"; reused: {', '.join(plan.kept)}" if plan.kept else ""
        said = f"retry {plan.count}: runs again {', '.join(plan.rerun)}{kept}"
        retry = functools.partial(
            pardag.retry, from_=from_, downstream=not no_downstream, store=opened
        )
        if queue:
            if secrets_file is not None:
                raise ArgumentError(
                    "--secrets-file serves a retry that runs here; a queued one gets the "
                    "worker's (pardag worker --secrets-file FILE): leave it out"
                )
            retry(record.run_id, queue=True)
            stderr.print(f"run {record.run_id} {said} (queued for a worker)", markup=False)
            _print_queued(record.run_id, plan.count, json_output)
            raise typer.Exit(ExitCode.SUCCEEDED)

        def here(found: str) -> RunResult:
            stderr.print(said, markup=False)
            result = retry(found, secrets_file=secrets_file)
            assert isinstance(result, RunResult)  # run here: not queued
            return result

        result, steps = _go_on(opened, record.run_id, here)
    raise typer.Exit(finish(result, json_output, session, steps, store))


def _print_queued(run_id: str, count: int, json_output: bool) -> None:
    """A queued retry's run id on stdout, as ``pardag run --queue`` prints a queued run."""
    if json_output:
        sys.stdout.write(dumps({"run_id": run_id, "status": "queued", "retry": count}) + "\n")
    else:
        stdout.print(run_id, markup=False)


WAIT_EVERY = 0.2
"""Seconds between looks at a run ``pardag cancel --wait`` waits for."""


def cancel_command(
    run_id: RunIdArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the run has ended (a worker stops it at its next check): exit 0 "
            "once it is cancelled, 1 if it ended otherwise first.",
        ),
    ] = False,
) -> None:
    """Cancel a run: the worker holding it (on any machine) or its process (on this machine)
    stops it cleanly; a queued, paused or dead run is marked cancelled."""
    with reported(Session(debug)), open_recorded_store(store, config) as opened:
        record = recorded_run(opened, run_id)
        stderr.print(history.cancel(record.run_id, store=opened), markup=False)
        if not wait:
            return
        while not RunStatus((ended := recorded_run(opened, record.run_id)).status).is_final():
            time.sleep(WAIT_EVERY)
        stderr.print(f"run {record.run_id} ended {ended.status}", markup=False)
    if ended.status != RunStatus.CANCELLED:
        raise typer.Exit(ExitCode.FAILED)
