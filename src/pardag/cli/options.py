"""The arguments and options several commands share, so that each is spelt and helped once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = [
    "AllowPrivateOpt",
    "ConfigOpt",
    "DebugOpt",
    "FileArg",
    "FlagCommand",
    "FlagGroup",
    "JsonOpt",
    "RunIdArg",
    "SecretsFileOpt",
    "StoreOpt",
]

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

SecretsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--secrets-file",
        help="NAME=value lines (mode 0600) giving the run's secrets; default "
        "PARDAG_SECRETS_FILE. PARDAG_SECRET_<NAME> variables give them too.",
        metavar="FILE",
    ),
]
"""``--secrets-file FILE``: the secrets of the run, over ``PARDAG_SECRET_<NAME>``."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
"""``--json`` of the run-store commands (``run`` words its own)."""

AllowPrivateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-private-egress",
        help="Let this organisation's service runs (API, triggers) reach loopback, link-local "
        "and private addresses (repeat for more).",
        metavar="ORG",
    ),
]
"""The organisations exempt from the service's egress preset (docs/server.md)."""

RunIdArg = Annotated[str, typer.Argument(help="The run's id (or its first 6+ characters).")]
"""The recorded run a run-store command is about."""


class _FlagHelp:
    """Help that shows each boolean option as a flag (``--json``): typer 0.29 shows
    ``--json <bool>``, as if it took a value. A mixin over typer's command classes (whose
    click base moved into typer in 0.29)."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _as_flag(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]  # the typer class's
        _as_flag(option)
        return option


def _as_flag(option: Any) -> None:
    if getattr(option, "is_flag", False):  # an option (typer's, or click's --help before 0.29)
        option.metavar = ""


class FlagCommand(_FlagHelp, TyperCommand):
    """Every ``pardag`` command: its flags helped as flags."""


class FlagGroup(_FlagHelp, TyperGroup):
    """``pardag`` itself (``--help``, ``--version``): its flags helped as flags."""
