"""``pardag secret set|list|delete|reseal``: an organisation's secrets, sealed in the run store.

A value is read from stdin (a pipe) or a prompt that does not echo, never from an argument
(arguments show in ``ps`` and shell history), and is never printed: ``list`` shows names and
times. Sealing needs the key (``PARDAG_SECRET_KEY`` or ``--secret-key-file``, made on first
use; ``pardag.vault``); listing and deleting do not.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from pardag.cli.console import Session, reported, stderr, stdout
from pardag.cli.exits import ExitCode
from pardag.cli.options import ConfigOpt, DebugOpt, FlagCommand, FlagGroup, JsonOpt, StoreOpt
from pardag.cli.tokens import store_of_flags, when
from pardag.errors import ArgumentError
from pardag.vault import (
    KEY_ENV,
    Keyring,
    delete_secret,
    list_secrets,
    reseal_secrets,
    set_secret,
)

__all__ = ["SecretKeyFileOpt", "app", "read_value"]

app = typer.Typer(
    help="Manage an organisation's secrets (kept encrypted in the run store, never shown).",
    no_args_is_help=True,
    cls=FlagGroup,
)

SecretKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--secret-key-file",
        help=f"The key sealing organisations' secrets (over {KEY_ENV}; default "
        ".pardag/secret.key, made 0600 on first use).",
        metavar="FILE",
    ),
]
"""``--secret-key-file FILE``: where the key of the stored secrets is (``pardag.vault``)."""

OrgArg = Annotated[str, typer.Argument(help="The organisation the secret belongs to.")]
NameArg = Annotated[str, typer.Argument(help="The secret's name, such as API_TOKEN.")]


def read_value(name: str) -> str:
    """The value of secret ``name``: stdin when piped (one final newline dropped), else a
    prompt that does not echo."""
    if sys.stdin.isatty():
        value: str = typer.prompt(f"value of {name}", hide_input=True, err=True)
        return value
    text = sys.stdin.read()
    value = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not value:
        raise ArgumentError(
            f"no value for the secret {name!r} on stdin; pipe it in (printf %s VALUE | "
            "pardag secret set ORG NAME) or run the command in a terminal to be asked for it"
        )
    return value


@app.command("set", cls=FlagCommand)
def set_command(
    org: OrgArg,
    name: NameArg,
    secret_key_file: SecretKeyFileOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Set a secret (its value from stdin or a prompt, never an argument)."""
    with reported(Session(debug)):
        value = read_value(name)
        with store_of_flags(store, config, create=True) as opened:
            created = set_secret(opened, Keyring(secret_key_file), org, name, value, time.time())
        done = "set" if created else "replaced"
        stderr.print(f"secret {name} of {org} {done} (sealed in {opened.url})", markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


@app.command("list", cls=FlagCommand)
def list_command(
    org: OrgArg,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List an organisation's secrets: names and times, never values."""
    with reported(Session(debug)):
        with store_of_flags(store, config) as opened:
            infos = list_secrets(opened, org)
        if as_json:
            stdout.print(json.dumps([i.shown() for i in infos]), markup=False)
        for info in [] if as_json else infos:
            stdout.print(f"{info.name}  set {when(info.updated_at)}", markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


@app.command("delete", cls=FlagCommand)
def delete_command(
    org: OrgArg,
    name: NameArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete a secret: runs started from now on no longer get it."""
    with reported(Session(debug)):
        with store_of_flags(store, config) as opened:
            if not delete_secret(opened, org, name):
                raise ArgumentError(
                    f"organisation {org!r} has no secret {name!r} in {opened.url}; "
                    f"pardag secret list {org} shows its secrets"
                )
        stderr.print(f"secret {name} of {org} deleted", markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


@app.command("reseal", cls=FlagCommand)
def reseal_command(
    org: OrgArg,
    secret_key_file: SecretKeyFileOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Seal an organisation's secrets again with the first key of PARDAG_SECRET_KEY (to
    rotate the key: put the new one first, reseal, then drop the old one)."""
    with reported(Session(debug)):
        with store_of_flags(store, config) as opened:
            names = reseal_secrets(opened, Keyring(secret_key_file), org, time.time())
        stderr.print(
            f"{len(names)} secret(s) of {org} sealed again with the first key", markup=False
        )
    raise typer.Exit(ExitCode.SUCCEEDED)
