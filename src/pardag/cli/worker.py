"""``pardag worker``: claim queued runs from the run store and run them, until stopped.

The first SIGTERM or Ctrl-C stops claiming and waits for the runs in hand to end (their leases
renewed meanwhile); a second leaves at once, and the runs it held are taken over by another
worker once their leases expire (docs/server.md).
"""

from __future__ import annotations

import os
import signal
from typing import Annotated, Any

import typer

from pardag.cli.console import Session, reported, stderr
from pardag.cli.exits import ExitCode
from pardag.cli.options import AllowPrivateOpt, ConfigOpt, DebugOpt, SecretsFileOpt, StoreOpt
from pardag.cli.secrets import SecretKeyFileOpt
from pardag.config import resolve
from pardag.errors import ArgumentError
from pardag.store import open_store
from pardag.units import parse_duration
from pardag.vault import Keyring
from pardag.worker import DEFAULT_LEASE, POLL_EVERY, Worker

__all__ = ["duration", "worker_command"]


def worker_command(
    max_runs: Annotated[
        int, typer.Option("--max-runs", help="Most runs at once in this worker.", metavar="N")
    ] = 1,
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            help="How long a claim holds unrenewed: a dead worker's runs wait this long "
            "before another worker takes them over.",
            metavar="DURATION",
        ),
    ] = f"{DEFAULT_LEASE:g}s",
    poll: Annotated[
        str,
        typer.Option(
            "--poll",
            help="How often an idle worker looks for queued runs (a busy one: for cancels).",
            metavar="DURATION",
        ),
    ] = f"{POLL_EVERY:g}s",
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Exit once no run is queued and none is in hand (empty the queue, for cron).",
        ),
    ] = False,
    allow_private_egress: AllowPrivateOpt = None,
    store: StoreOpt = None,
    secrets_file: SecretsFileOpt = None,
    secret_key_file: SecretKeyFileOpt = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the queued runs of the run store (pardag run FILE --queue puts them there)."""
    with reported(Session(debug)):
        lease_s, poll_s = duration(lease, "--lease"), duration(poll, "--poll")
        settings = resolve(None, flags={"store": store}, config=config)
        with open_store(settings.store) as opened:
            options: Any = {"secrets_file": secrets_file} if secrets_file else {}
            worker = Worker(
                opened,
                max_runs=max_runs,
                lease=lease_s,
                poll=poll_s,
                options=options,
                keyring=Keyring(secret_key_file),
                allow_private=allow_private_egress or (),
            )
            before = _on_signals(worker)
            stderr.print(
                f"worker {worker.name} on {opened.url}: up to {max_runs} run(s) at once, "
                f"lease {lease_s:g}s; SIGTERM or Ctrl-C stops it",
                markup=False,
            )
            try:
                worker.serve(until_idle=until_idle)
            finally:
                for signum, handler in before.items():
                    signal.signal(signum, handler)
            stderr.print(f"worker {worker.name} stopped", markup=False)
    raise typer.Exit(ExitCode.SUCCEEDED)


def duration(text: str, flag: str) -> float:
    """Seconds of a duration flag's value; above 0, or an error naming ``flag``."""
    try:
        seconds = parse_duration(text, flag)
    except ValueError as exc:
        raise ArgumentError(str(exc)) from None
    if seconds <= 0:
        raise ArgumentError(f"{flag} {text}: give a duration above 0, such as 30s")
    return seconds


def _on_signals(worker: Worker) -> dict[int, Any]:
    """The first SIGTERM or SIGINT stops claiming; the second leaves now. Returns the
    handlers they had, to put back."""
    presses = 0

    def handle(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            stderr.print(
                f"worker {worker.name}: leaving now; the leases of runs "
                f"{', '.join(worker.running) or '(none)'} expire and another worker takes "
                "them over",
                markup=False,
            )
            os._exit(ExitCode.INTERRUPTED)
        held = worker.running
        stderr.print(
            f"worker {worker.name}: stopping; waiting for {len(held)} run(s) in hand to end "
            "(send it again to leave now)",
            markup=False,
        )
        worker.stop()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
