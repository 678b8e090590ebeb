"""The console every command talks on, and how an error becomes one message and an exit code.

What a command was asked for (tables of runs and steps, a run's results, JSON, logs,
drawings) goes to stdout, so that ``pardag runs | grep`` and ``pardag show ID | less`` work;
progress, the live view, warnings and errors go to stderr. An error is one readable message;
``--debug`` (or ``PARDAG_DEBUG``) adds the traceback.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from pardag.cli.exits import ExitCode
from pardag.config import SettingsError
from pardag.errors import ArgumentError, PardagError, ValidationError

__all__ = ["Session", "error", "reported", "stderr", "stdout", "warn"]

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
"""Where the commands write progress, the live view, warnings and errors (plain on a pipe)."""
stdout = Console(highlight=False, soft_wrap=True)
"""Where the commands write what they were asked for: tables, results (plain on a pipe)."""


class Session:
    """Whether to show tracebacks; known from flag and environment first, settings later."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug or _env_debug()


def _env_debug() -> bool:
    return os.environ.get("PARDAG_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def reported(session: Session) -> Iterator[None]:
    """Turn every error into a message and an exit code; a traceback only with ``--debug``."""
    try:
        yield
    except (typer.Exit, KeyboardInterrupt):
        raise
    except ValidationError as exc:
        _trace(session)
        error(_validation_message(exc))
        raise typer.Exit(ExitCode.INVALID) from None
    except ArgumentError as exc:
        _trace(session)
        for problem in exc.problems if isinstance(exc, SettingsError) else [str(exc)]:
            error(problem)
        raise typer.Exit(ExitCode.INVALID) from None
    except PardagError as exc:
        _trace(session)
        error(str(exc))
        raise typer.Exit(ExitCode.FAILED) from None
    except Exception as exc:
        _trace(session)
        hint = "" if session.debug else "; run again with --debug for the traceback"
        error(f"pardag failed unexpectedly: {type(exc).__name__}: {exc}{hint}")
        raise typer.Exit(ExitCode.FAILED) from None


def _trace(session: Session) -> None:
    if session.debug:
        stderr.print(traceback.format_exc(), end="", markup=False)


def error(message: str) -> None:
    """Print ``message`` on stderr as an error (``error: ...``, not read as markup)."""
    stderr.print(f"[bold red]error:[/] {escape(message)}")


def warn(message: str) -> None:
    """Print ``message`` on stderr as a warning (``warning: ...``, not read as markup)."""
    stderr.print(f"[yellow]warning:[/] {escape(message)}")


def _validation_message(exc: ValidationError) -> str:
    count = len(exc.problems)
    if count == 1 and exc.problems[0].where:
        return str(exc.problems[0])
    head = f"{exc.workflow} is invalid ({count} problem{'s' if count != 1 else ''}):"
    return "\n".join([head, *(f"  {p}" for p in exc.problems)])
