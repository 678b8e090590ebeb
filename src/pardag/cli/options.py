"""The arguments and options several commands share, so that each is spelt and helped once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConfigOpt", "DebugOpt", "FileArg", "JsonOpt", "RunIdArg", "StoreOpt"]

FileArg = Annotated[Path, typer.Argument(help="The workflow file (any supported format).")]
"""The workflow file of ``run``, ``validate`` and ``graph``."""

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file to use instead of the nearest pardag.toml / pyproject.toml.",
        metavar="FILE",
    ),
]
"""``--config FILE``: the settings file instead of the one found from the current directory."""

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
"""``--debug``: tracebacks with the error messages."""

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Run store: a SQLite file or a postgresql:// URL (default .pardag/runs.db).",
        metavar="URL",
    ),
]
"""``--store URL``: the run store, over ``PARDAG_STORE`` and the config file."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
"""``--json`` of the run-store commands (``run`` words its own)."""

RunIdArg = Annotated[str, typer.Argument(help="The run's id (or its first 6+ characters).")]
"""The recorded run a run-store command is about."""
