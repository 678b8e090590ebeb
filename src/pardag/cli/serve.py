"""``pardag serve``: the HTTP API and workers, in one process (docs/server.md).

FastAPI and uvicorn are an extra (``pip install 'pardag[server]'``): imported only when the
command runs, and their absence is a one-line error saying how to install them.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pardag.cli.console import Session, reported, stderr, stdout, warn
from pardag.cli.exits import ExitCode
from pardag.cli.options import AllowPrivateOpt, ConfigOpt, DebugOpt, StoreOpt
from pardag.cli.secrets import SecretKeyFileOpt
from pardag.cli.worker import duration
from pardag.config import resolve
from pardag.errors import ArgumentError
from pardag.store import open_store
from pardag.worker import DEFAULT_LEASE

__all__ = ["serve_command"]

SERVER_EXTRA = "pip install 'pardag[server]'"


def serve_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback unless told).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on (0: any free one).")
    ] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", help="Workers in this process running queued runs.")
    ] = 1,
    lease: Annotated[
        str, typer.Option("--lease", help="The workers' lease.", metavar="DURATION")
    ] = f"{DEFAULT_LEASE:g}s",
    allow_private_egress: AllowPrivateOpt = None,
    store: StoreOpt = None,
    secret_key_file: SecretKeyFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Serve the HTTP API (and run queued runs) until Ctrl-C or SIGTERM."""
    with reported(Session(debug)):
        if workers < 0:
            raise ArgumentError(f"--workers {workers}: give 0 or more")
        lease_s = duration(lease, "--lease")
        try:
            from pardag.server.service import Service, first_token, is_loopback
            from pardag.vault import Keyring
        except ImportError as exc:
            raise ArgumentError(
                f"pardag serve needs FastAPI and uvicorn ({exc}); install them: {SERVER_EXTRA}"
            ) from None
        settings = resolve(None, flags={"store": store}, config=config)
        with open_store(settings.store) as opened:
            if not is_loopback(host):
                warn(
                    f"--host {host} is not a loopback address: the API is reachable from other "
                    "machines; put TLS in front of it (a reverse proxy) before using it so"
                )
            keyring = Keyring(secret_key_file)
            service = Service(
                opened,
                host=host,
                port=port,
                workers=workers,
                lease=lease_s,
                say=_say,
                keyring=keyring,
                allow_private_egress=allow_private_egress or (),
            )
            token = first_token(opened)
            if token is not None:
                stdout.print(
                    "no API token in this store yet: an admin token of organisation 'default' "
                    f"(shown once, keep it): {token}",
                    markup=False,
                )
            if allow_private_egress:
                warn(
                    "the service's runs of "
                    + ", ".join(sorted(set(allow_private_egress)))
                    + " may reach loopback, link-local and private addresses "
                    "(--allow-private-egress)"
                )
            service.run(ready=lambda: _ready(service.url, opened.url, workers))
            if service.left_early:
                _leave(service.running)
    raise typer.Exit(ExitCode.SUCCEEDED)


def _say(line: str) -> None:
    stderr.print(line, markup=False)


def _ready(url: str, store: str, workers: int) -> None:
    stdout.print(
        f"pardag serve: {url} (the page at {url}/, the API under /api, OpenAPI at "
        f"{url}/api/openapi.json) on {store}, "
        f"{workers} worker(s); Ctrl-C stops it",
        markup=False,
    )


def _leave(held: list[str]) -> None:
    """Exit now, the runs in hand still running in threads: their leases expire, and another
    worker takes them over (as ``pardag worker`` does on a second signal)."""
    stderr.print(
        f"leaving now; the leases of runs {', '.join(held) or '(none)'} expire and another "
        "worker takes them over",
        markup=False,
    )
    os._exit(ExitCode.INTERRUPTED)
