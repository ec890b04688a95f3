"""The SSRF guard: address classes (literal IPs), URL checks, and the pinned transport."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest

from mongars.research import netguard
from mongars.research.netguard import AddressPolicy, BlockedAddress, blocked_reason
from tests.research.webserver import Site, serve_site


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # reserved for future use
        ("::a00:1", "reserved"),  # IPv4-compatible (deprecated)
        ("fec0::1", "site-local"),
        ("2001:db8::1", "private"),  # documentation
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("198.18.0.1", "private"),  # benchmarking
        ("::ffff:127.0.0.1", "embeds 127.0.0.1: loopback"),
        ("::ffff:169.254.169.254", "embeds 169.254.169.254: cloud metadata"),
        ("2002:a00:1::", "embeds 10.0.0.1: private"),  # 6to4
        ("64:ff9b::a00:1", "embeds 10.0.0.1: private"),  # NAT64
    ],
)
def test_refused_address_classes(address: str, why: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/", "file:///etc/passwd", "http://user:pw@example.org/", "http:///path"],
)
def test_unsafe_urls(url: str) -> None:
    with pytest.raises(netguard.UnsafeURL):
        netguard.validate_url(httpx.URL(url))


def test_http_and_https_urls_pass() -> None:
    netguard.validate_url(httpx.URL("https://example.org/a?b=c"))
    netguard.validate_url(httpx.URL("http://[2606:4700:4700::1111]:8080/"))


def resolver_of(*answers: list[str]) -> netguard.Resolver:
    """A resolver that gives each answer in turn (the last one repeats)."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    return resolve


async def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    resolve = resolver_of(["93.184.216.34", "10.0.0.7"])
    with pytest.raises(BlockedAddress) as caught:
        await netguard.resolve_checked("mixed.example", 80, AddressPolicy(), resolve)
    assert caught.value.address == "10.0.0.7"


async def test_allow_list_matches_the_host_as_written_not_its_addresses() -> None:
    allow = AddressPolicy(frozenset({"127.0.0.1"}))
    assert await netguard.resolve_checked("127.0.0.1", 80, allow) == ["127.0.0.1"]
    with pytest.raises(BlockedAddress):
        await netguard.resolve_checked("127.0.0.1", 80, AddressPolicy())
    with pytest.raises(BlockedAddress):  # resolves to loopback, but is not listed
        await netguard.resolve_checked("localhost", 80, allow)
    with pytest.raises(BlockedAddress):
        await netguard.resolve_checked("[::1]", 80, allow)


async def test_numeric_host_spellings_are_checked_after_resolution() -> None:
    # 2130706433 == 127.0.0.1; the system resolver turns it into the dotted form.
    with pytest.raises(BlockedAddress) as caught:
        await netguard.resolve_checked("2130706433", 80, AddressPolicy())
    assert caught.value.address == "127.0.0.1"


# -- the transport itself (no pre-check): pinning and rebinding ------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


async def test_transport_refuses_a_blocked_address_by_itself(site: Site) -> None:
    async with netguard.guarded_client(AddressPolicy(), user_agent="t", timeout_s=5) as client:
        with pytest.raises(BlockedAddress):
            await client.get(f"{site.url}/plain.txt")
        with pytest.raises(BlockedAddress):
            await client.get(f"http://localhost:{site.port}/plain.txt")


async def test_transport_connects_to_the_address_it_checked(site: Site) -> None:
    # "iris.test" exists only in this resolver; the request reaches the site, Host intact.
    policy = AddressPolicy(frozenset({"iris.test"}))
    resolve = resolver_of(["127.0.0.1"])
    async with netguard.guarded_client(policy, user_agent="t", timeout_s=5, resolver=resolve) as c:
        response = await c.get(f"http://iris.test:{site.port}/plain.txt")
    assert response.text == "Plain rainbow facts."
    assert site.seen[-1].headers["host"] == f"iris.test:{site.port}"


async def test_dns_rebinding_between_check_and_connect_is_refused(site: Site) -> None:
    # First answer public (what a pre-check would see), then loopback at connect time.
    resolve = resolver_of(["93.184.216.34"], ["127.0.0.1"])
    seen_before = len(site.seen)
    assert await netguard.resolve_checked("rebind.test", 80, AddressPolicy(), resolve)
    async with netguard.guarded_client(
        AddressPolicy(), user_agent="t", timeout_s=5, resolver=resolve
    ) as client:
        with pytest.raises(BlockedAddress) as caught:
            await client.get(f"http://rebind.test:{site.port}/plain.txt")
    assert caught.value.address == "127.0.0.1"
    assert len(site.seen) == seen_before
