"""``pardag --version``, and every boolean option helped as a flag (``--json``), not as an
option taking a value (``--json <bool>``)."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

import pardag
from pardag.cli import app

COMMAND = typer.main.get_command(app)
NAMES = ["", *sorted(getattr(COMMAND, "commands", {}))]
NAMES += [  # the subcommands of a group (pardag token create)
    f"{name} {sub}"
    for name in NAMES[1:]
    for sub in sorted(getattr(COMMAND.commands[name], "commands", {}))  # type: ignore[attr-defined]
]


def test_version_prints_pardags_version() -> None:
    done = CliRunner().invoke(app, ["--version"])
    assert done.exit_code == 0
    assert done.output == f"pardag {pardag.__version__}\n"


@pytest.mark.parametrize("name", NAMES)
def test_every_boolean_option_is_helped_as_a_flag(name: str) -> None:
    args = [*name.split(), "--help"]
    done = CliRunner().invoke(app, args, terminal_width=200, env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    command = COMMAND
    for part in name.split():
        command = command.commands[part]  # type: ignore[attr-defined]
    flags = [p for p in command.params if getattr(p, "is_flag", False)]
    flags.append(command.get_help_option(typer.Context(command)))
    group = hasattr(command, "commands") and name != ""  # pardag token: only --help
    assert len(flags) >= (1 if group else 2)  # --help and --debug, --json or --version
    for flag in flags:
        words = " ".join((flag.help or "").split()[:3])
        # the flag (and its short form), then its help at once: no metavar between them
        long, short = flag.opts[0], "|".join(flag.opts[1:]) or "-"
        assert re.search(rf"{long}(\s+(?:{short}))?\s+{re.escape(words)}", done.output), (
            long,
            done.output,
        )
