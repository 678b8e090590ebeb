"""``pardag token create|list|revoke``: the API tokens of ``pardag serve``, kept in the run store.

``create`` prints the token once, on stdout, and nowhere else: the store keeps its hash only
(``pardag.tokens``), so a lost token is revoked and replaced, never shown again.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from pardag.cli.console import Session, reported, stderr, stdout
from pardag.cli.exits import ExitCode
from pardag.cli.options import ConfigOpt, DebugOpt, FlagCommand, FlagGroup, JsonOpt, StoreOpt
from pardag.config import resolve
from pardag.errors import ArgumentError
from pardag.store import Store, open_store
from pardag.store.tenancy import ROLES, TokenRecord
from pardag.tokens import issue, parse_expiry

__all__ = ["app", "parse_expiry", "store_of_flags", "when"]

app = typer.Typer(
    help="Manage the API tokens of pardag serve (kept hashed in the run store).",
    no_args_is_help=True,
    cls=FlagGroup,
)


@app.command("create", cls=FlagCommand)
def create_command(
    org: Annotated[str, typer.Option("--org", help="The organisation it belongs to.")],
    role: Annotated[
        str, typer.Option("--role", help=f"What it may do: {', '.join(ROLES)}.", metavar="ROLE")
    ],
    name: Annotated[str, typer.Option("--name", help="A label, to tell tokens apart.")] = "",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, such as 30d.", metavar="DURATION")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Make a token and print it once (keep it: it is not shown again)."""
    with reported(Session(debug)):
        lifetime = parse_expiry(expires) if expires is not None else None
        with store_of_flags(store, config, create=True) as opened:
            text, record = issue(
                opened, org=org, role=role, name=name, now=time.time(), expires_in=lifetime
            )
        stderr.print(
            f"token {record.token_id} ({record.role} of {record.org}); it is shown once:",
            markup=False,
        )
        stdout.print(text, markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


@app.command("list", cls=FlagCommand)
def list_command(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation's.")] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List the tokens (their ids, organisations, roles and dates; never the tokens)."""
    with reported(Session(debug)):
        with store_of_flags(store, config) as opened:
            tokens = opened.list_tokens(org)
        now = time.time()
        if as_json:
            stdout.print(json.dumps([_as_dict(t, now) for t in tokens]), markup=False)
        for t in [] if as_json else tokens:
            stdout.print(
                f"{t.token_id}  {t.org}  {t.role}  {_status(t, now)}  {t.name}", markup=False
            )
    raise typer.Exit(ExitCode.SUCCEEDED)


@app.command("revoke", cls=FlagCommand)
def revoke_command(
    token_id: Annotated[str, typer.Argument(help="The token's id (tok_..., from token list).")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Revoke a token: every request with it is refused from now on."""
    with reported(Session(debug)):
        with store_of_flags(store, config) as opened:
            if not opened.revoke_token(token_id, time.time()):
                raise ArgumentError(
                    f"there is no token {token_id!r} not yet revoked in {opened.url}; "
                    "pardag token list shows the tokens"
                )
        stderr.print(f"token {token_id} is revoked", markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


def store_of_flags(store: str | None, config: Path | None, *, create: bool = False) -> Store:
    """The run store the flags, the environment or the config file name."""
    return open_store(resolve(None, flags={"store": store}, config=config).store, create=create)


def _status(token: TokenRecord, now: float) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is None:
        return "active, never expires"
    if token.expires_at <= now:
        return "expired"
    return "active until " + when(token.expires_at)


def when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _as_dict(token: TokenRecord, now: float) -> dict[str, object]:
    fields = ("token_id", "org", "role", "name", "created_at", "expires_at", "revoked_at")
    return {**{f: getattr(token, f) for f in fields}, "status": _status(token, now)}
