"""No loopback, private, link-local or otherwise non-public address, unless the operator says
so (`--allow-private`): a sync on a server must not become a way into its network (SSRF).

The check sits in the HTTP client's network backend, so it applies to every connection the
client opens (redirect targets included) and to the very address it connects to: the host is
resolved once, every address checked, and the connection made to a checked address (a DNS answer
that changes between check and connect cannot slip through)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import anyio
import httpcore
import httpx


class BlockedAddress(Exception):
    """A URL whose host is (or resolves to) an address the sync may not reach."""


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for `host`; BlockedAddress when any address it resolves to is
    not public (and private ones are not allowed)."""
    literal = host.strip("[]")
    try:
        addresses = [ipaddress.ip_address(literal)]
    except ValueError:
        try:
            infos = await anyio.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise httpcore.ConnectError(f"{host} has no address")
    if not allow_private:
        blocked = [str(a) for a in addresses if not _public(a)]
        if blocked:
            raise BlockedAddress(
                f"{host} is {', '.join(sorted(set(blocked)))}, a loopback or private address: refused "
                "(a sync must not reach into the server's own network; --allow-private allows it)"
            )
    return str(addresses[0])


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        address = await resolve(host, port, self.allow_private)
        return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not reachable from a sync")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(allow_private: bool, max_connections: int) -> httpx.AsyncHTTPTransport:
    """httpx's transport on a connection pool whose every connection goes through the guard
    (TLS still verifies the host name: only the TCP connection is made to the checked address)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001 - httpx has no option for the network backend
        ssl_context=httpx.create_ssl_context(), max_connections=max_connections, max_keepalive_connections=max_connections,
        network_backend=GuardedBackend(allow_private),
    )
    return transport
