"""The ``pardag`` command line: run, validate and draw workflow files, and read and steer the
runs recorded in the run store.

It stays thin: it reads a file with ``pardag.load``, resolves the settings (``pardag.config``),
runs with ``Workflow.run`` and listeners, and prints the ``RunResult``. Exit codes: 0 the run
succeeded, 1 it failed (or timed out), 2 the workflow, a setting or the usage is invalid, 3 it
paused, 130 it was interrupted. Errors are one readable message; ``--debug`` adds tracebacks.

A module a concept: ``run`` (and ``params``, ``jsonout``, ``waiting``), ``graph`` (validate
and graph), ``runs`` (what the run store holds), ``control`` (resume, approve, reject,
retry, cancel), ``worker`` (runs the queued runs), ``serve`` (the HTTP API), ``tokens``
(its tokens) and ``secrets`` (organisations' secrets), over the shared ``console``,
``options``, ``loading`` and ``exits``. Importing this
package registers every command on ``app``; nothing in pardag but ``__main__`` imports it (it
is the top layer).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

import pardag
from pardag.cli import control, graph, logs, run, runs, secrets, serve, tokens, worker
from pardag.cli.exits import ExitCode
from pardag.cli.graph import render_graph
from pardag.cli.jsonout import JsonLines, result_json, run_json
from pardag.cli.options import FlagCommand, FlagGroup
from pardag.cli.params import run_params
from pardag.cli.runs import as_event
from pardag.searchpath import add_folder

__all__ = [
    "ExitCode",
    "JsonLines",
    "app",
    "as_event",
    "main",
    "render_graph",
    "result_json",
    "run_json",
    "run_params",
]

app = typer.Typer(
    name="pardag",
    help="Run workflows shaped as DAGs: every step as soon as its dependencies allow.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=FlagGroup,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"pardag {pardag.__version__}")
        raise typer.Exit(ExitCode.SUCCEEDED)


@app.callback()
def _pardag(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print pardag's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """``pardag``'s own options (the app's help says what it does)."""


_COMMANDS: dict[str, Callable[..., Any]] = {  # in the order `pardag --help` lists them
    "run": run.run_command,
    "validate": graph.validate_command,
    "graph": graph.graph_command,
    "runs": runs.runs_command,
    "show": runs.show_command,
    "watch": runs.watch_command,
    "logs": logs.logs_command,
    "resume": control.resume_command,
    "approve": control.approve_command,
    "reject": control.reject_command,
    "retry": control.retry_command,
    "cancel": control.cancel_command,
    "worker": worker.worker_command,
    "serve": serve.serve_command,
}
for _name, _command in _COMMANDS.items():
    app.command(_name, cls=FlagCommand)(_command)
app.add_typer(tokens.app, name="token")
app.add_typer(secrets.app, name="secret")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    The current directory goes on ``sys.path`` so that ``function: module:callable`` steps
    find the project's own modules: last, after the installed packages, even where
    ``python -m pardag`` put it first (``pardag.searchpath`` says why).
    """
    cwd = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", cwd)]
    add_folder(cwd)
    try:
        app(args=list(argv) if argv is not None else None, prog_name="pardag")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else ExitCode.FAILED)
    return ExitCode.SUCCEEDED
