"""How an HTTP step connects when an egress policy is set: resolved, checked, pinned.

The check sits where the connection is made, in an httpcore network backend: every new
connection (the first request and each redirect hop to a new origin) passes through
``CheckedBackend.connect_tcp``, which checks the host name (before resolving it), resolves it
once, checks every address it resolved to (``pardag.egress``), and then connects to one of
those addresses, never to the name again: a DNS answer that changes between the check and the
connection (rebinding) cannot send the request elsewhere. TLS still verifies the name: httpcore
passes the URL's host as the server name, whatever address the socket reached.

With a policy set, the ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` variables are not used (httpx
ignores them for a client given its own transport): a proxy would connect on the step's
behalf, past the check.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import httpcore
import httpx

from pardag.egress import EgressPolicy, EgressRefused

__all__ = ["CheckedBackend", "checked_transport", "resolve"]


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order
    (libc's ``getaddrinfo``, off the event loop: it reads ``127.1`` and ``0x7f.0.0.1`` as
    connecting would)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the policy's check before each connection."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        refusal = self._policy.check_name(host, port)
        if refusal is not None:  # refused by name: not even resolved
            raise EgressRefused(refusal)
        try:
            addresses = await asyncio.wait_for(resolve(host, port), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        refusal = self._policy.check(host, port, addresses)
        if refusal is not None:
            raise EgressRefused(refusal)
        failed: Exception = httpcore.ConnectError(f"{host} resolved to no address")
        for address in addresses:  # each was checked: connect to it, not to the name
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
        raise failed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("an http step with an egress policy connects over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool that connects through ``CheckedBackend``.

    httpx 0.28/0.29 takes no network backend, so the pool it made is replaced by one made the
    way it makes it (the defaults of ``httpx.AsyncHTTPTransport``), with the backend added.
    """

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # certifi, or SSL_CERT_FILE/SSL_CERT_DIR
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(policy),
        )


def checked_transport(policy: EgressPolicy) -> httpx.AsyncBaseTransport:
    """A transport for ``httpx.AsyncClient(transport=...)`` that keeps to ``policy``."""
    return _CheckedTransport(policy)
