"""``pardag serve``'s process: the API on uvicorn, and workers that execute the queued runs.

One process holds both: uvicorn serves the app in the main thread (it handles SIGINT and
SIGTERM), ``workers`` ``pardag.worker.Worker`` threads claim and run what the API queues.
When uvicorn stops, the workers stop claiming and the runs in hand are waited for. The socket
is bound before anything starts, so the URL printed is the one that answers (port 0: any
free port). A host other than a loopback address is served only when asked, with a warning.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from pardag.errors import ArgumentError
from pardag.server.app import create_app
from pardag.store.base import Store
from pardag.tokens import issue
from pardag.vault import Keyring
from pardag.worker import DEFAULT_LEASE, POLL_EVERY, Worker

__all__ = ["DEFAULT_ORG", "Service", "first_token", "is_loopback"]

DEFAULT_ORG = "default"
"""The organisation of the admin token made for a store that has none."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_token(store: Store) -> str | None:
    """On a store with no token yet, an admin token of ``default`` (its text); else None."""
    if store.list_tokens():
        return None
    text, _ = issue(store, org=DEFAULT_ORG, role="admin", name="first admin", now=time.time())
    return text


class Service:
    """The API on ``host``:``port`` over ``store``, with ``workers`` workers beside it
    (``app``: the API as ``create_app`` makes it, by default); both seal and open the
    organisations' secrets with ``keyring``'s key. The runs the service queues keep off
    private addresses unless their organisation is in ``allow_private_egress``."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 1,
        lease: float = DEFAULT_LEASE,
        poll: float = POLL_EVERY,
        say: Callable[[str], None] = print,
        app: FastAPI | None = None,
        keyring: Keyring | None = None,
        allow_private_egress: Collection[str] = (),
    ) -> None:
        self.store, self.workers, self.say = store, workers, say
        self.socket = _bind(host, port)
        bound_host, bound_port = self.socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        keyring = keyring or Keyring()
        self._workers = [
            Worker(
                store,
                lease=lease,
                poll=poll,
                say=say,
                keyring=keyring,
                allow_private=allow_private_egress,
            )
            for _ in range(workers)
        ]
        self.app = app or create_app(store)
        self.app.state.keyring = keyring
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = _Server(config)
        self._leave = threading.Event()
        self.left_early = False
        """True when a second stop left runs in hand: their threads still run, so the
        process must exit now (``os._exit``) for their leases to expire and another worker
        to take them over."""

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM (or ``stop``), then let the workers finish the runs
        in hand; a second one returns at once, ``left_early`` set. ``ready`` is called once
        the signals are handled here (to print the URL, say)."""
        before = self._on_signals() if threading.current_thread() is threading.main_thread() else {}
        threads = [
            threading.Thread(target=w.serve, name=f"pardag-worker-{i}", daemon=True)
            for i, w in enumerate(self._workers)
        ]
        for thread in threads:
            thread.start()
        if ready is not None:
            ready()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.app.state.wakeups.close()
            self._drain(threads)
            for signum, handler in before.items():
                signal.signal(signum, handler)

    def stop(self) -> None:
        """Stop serving and wait for the runs in hand; called again, stop waiting. Safe from
        a signal handler."""
        if self.server.should_exit:
            self.server.force_exit = True
            self._leave.set()
        self.server.should_exit = True

    @property
    def running(self) -> list[str]:
        """The ids of the runs the workers have in hand."""
        return [run for worker in self._workers for run in worker.running]

    def _drain(self, threads: list[threading.Thread]) -> None:
        """Stop the workers and wait for their runs, in short waits, until a second stop."""
        for worker in self._workers:
            worker.stop()
        held = self.running
        if held:
            self.say(
                f"waiting for {len(held)} run(s) in hand to end: {', '.join(held)} "
                "(stop again to leave now)"
            )
        while any(thread.is_alive() for thread in threads):
            if self._leave.is_set():
                self.left_early = True
                return
            for thread in threads:
                thread.join(0.1)

    def _on_signals(self) -> dict[int, Any]:
        def handle(signum: int, frame: Any) -> None:
            self.stop()

        return {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to ``Service``: uvicorn's own handling raises the
    signal again once it stopped, which would end the process before the workers finish."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP; with Nagle on, each answer after the first on a kept-alive connection
    # waited for the client's delayed ACK (about 40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ArgumentError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; give another --port "
            "(or stop what holds it) or another --host"
        ) from None
    sock.listen(128)
    return sock
