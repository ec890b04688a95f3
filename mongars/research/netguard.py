"""SSRF guard for outbound research traffic: which URLs and addresses may be reached.

Every address a host name resolves to is checked; one forbidden address refuses
the host. Forbidden: loopback, private (RFC 1918, ULA), link-local, multicast,
reserved, unspecified, carrier-grade NAT and every other non-global range, cloud
metadata endpoints (also the public-looking ones such as Azure's 168.63.129.16),
and IPv6 forms that embed a forbidden IPv4 address (IPv4-mapped, 6to4, Teredo,
NAT64).

The guard is applied twice: ``resolve_checked`` before each hop (clear error,
nothing sent), and inside the HTTP transport (``GuardedBackend``), which
resolves the name itself, checks the result, and connects to the very address
it checked. So a DNS answer that changes between check and connect (DNS
rebinding) cannot reach a forbidden address, and every redirect target, robots
file and keep-alive reconnect goes through the same check. TLS still verifies
the certificate against the URL's host name (httpcore passes the origin host
as SNI, not the IP).

``AddressPolicy.allow_hosts`` is the only way through: a host spelled exactly as
listed (``"127.0.0.1"``, ``"searx.lan"``) skips the address check. It matches
the URL's host, never a resolved address, so ``localhost`` is still refused when
only ``127.0.0.1`` is listed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6 metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wireserver (a public address)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(Exception):
    """The host resolves to (or is) an address the policy refuses."""

    def __init__(self, host: str, address: str, why: str) -> None:
        super().__init__(f"{host} resolves to {address} ({why}): refused by the network guard")
        self.host = host
        self.address = address
        self.why = why


class UnsafeURL(Exception):
    """The URL itself is refused: scheme, embedded credentials or missing host."""


@dataclass(frozen=True)
class AddressPolicy:
    """What the guard lets through besides public addresses."""

    allow_hosts: frozenset[str] = field(default_factory=frozenset)

    def allows(self, host: str) -> bool:
        return normalize_host(host) in {normalize_host(h) for h in self.allow_hosts}


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be reached, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"embeds {embedded}: {inner}" if inner else None
    checks = (
        (ip in METADATA_ADDRESSES, "cloud metadata"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    )
    return next((why for hit, why in checks if hit), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def validate_url(url: httpx.URL) -> None:
    """Refuse non-HTTP schemes, user:password@ credentials and host-less URLs."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"only http and https URLs can be fetched, not {url.scheme or 'none'!r}")
    if url.userinfo:
        raise UnsafeURL("URLs with embedded credentials are refused")
    if not url.host:
        raise UnsafeURL("the URL has no host")


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(
    host: str, port: int, policy: AddressPolicy, resolver: Resolver = system_resolve
) -> list[str]:
    """The addresses to connect to for ``host``; raises BlockedAddress if any is refused.

    Resolution failures propagate as ``OSError`` (``socket.gaierror``).
    """
    name = normalize_host(host)
    literal = _parse_ip(name)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = await resolver(name, port)
        if not addresses:
            raise socket.gaierror(f"{name} has no address")
    if policy.allows(name):
        return addresses
    for address in addresses:
        ip = _parse_ip(address)
        why = "unparseable address" if ip is None else blocked_reason(ip)
        if why:
            raise BlockedAddress(name, address, why)
    return addresses


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address (no second lookup)."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_checked(host, port, self.policy, self.resolver)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are refused by the network guard")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a ``GuardedBackend``.

    httpx does not expose the network backend, so this builds the pool that
    ``AsyncHTTPTransport.__init__`` would (no proxy, HTTP/1.1) on the guarded one.
    """

    def __init__(self, policy: AddressPolicy, resolver: Resolver = system_resolve) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy, resolver),
        )


def guarded_client(
    policy: AddressPolicy,
    *,
    user_agent: str,
    timeout_s: float,
    resolver: Resolver = system_resolve,
) -> httpx.AsyncClient:
    """An AsyncClient that cannot reach refused addresses, never follows redirects
    by itself, ignores proxy and netrc environment variables and keeps no cookies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_s),
        headers={"User-Agent": user_agent},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
