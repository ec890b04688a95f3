"""Iris: the research fetcher. One guarded GET, readable text out.

``IrisFetcher.fetch(url)`` follows redirects itself (each hop: URL checks,
SSRF guard, robots.txt, per-host rate limit), caps time and size, refuses
content types outside the allow-list, extracts readable text and caches the
result. Every failure is a ``FetchError`` with a stable ``reason`` code.

    async with IrisFetcher(FetcherConfig(allow_hosts=frozenset())) as iris:
        page = await iris.fetch("https://example.org/article")

``guarded_get`` is the lower-level exchange shared with the web-search clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from mongars.research import netguard, readable
from mongars.research.robots import MAX_ROBOTS_BYTES, HostRateLimiter, RobotsCache, RobotsFile

Reason = Literal[
    "bad_url",
    "blocked_address",
    "robots",
    "too_large",
    "timeout",
    "content_type",
    "http_status",
    "too_many_redirects",
    "network",
    "bad_response",
]
DEFAULT_USER_AGENT = "monGARS-Iris/0.1 (+self-hosted research fetcher)"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
DEFAULT_TYPES = HTML_TYPES | TEXT_TYPES | {"application/pdf"}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

HopHook = Callable[[httpx.URL], Awaitable[None]]


class FetchError(Exception):
    """A fetch that did not produce a page; ``reason`` is a stable code."""

    def __init__(self, reason: Reason, message: str, *, url: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.url = url
        self.status = status


@dataclass(frozen=True)
class FetcherConfig:
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 15.0  # whole exchange per hop: connect, headers, full body
    max_bytes: int = 5 * 1024 * 1024  # decoded body; the download stops past it
    max_redirects: int = 5
    allowed_content_types: frozenset[str] = DEFAULT_TYPES
    min_interval_s: float = 1.0  # between two requests to one host (robots.txt included)
    max_crawl_delay_s: float = 10.0  # a robots.txt Crawl-delay is honoured up to this
    cache_ttl_s: float = 3600.0
    cache_entries: int = 256
    cache_max_bytes: int = 64 * 1024 * 1024
    robots_ttl_s: float = 3600.0
    allow_hosts: frozenset[str] = field(default_factory=frozenset)  # tests, trusted hosts


@dataclass(frozen=True)
class FetchedPage:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    content_type: str  # MIME type without parameters
    title: str
    text: str  # readable text; empty for PDF
    fetched_at: datetime
    from_cache: bool = False
    content: bytes = b""  # raw body for binary types (PDF); empty for text types

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["fetched_at"] = self.fetched_at.isoformat()
        data["content"] = base64.b64encode(self.content).decode("ascii")
        del data["from_cache"]
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str, *, from_cache: bool = False) -> FetchedPage:
        data = json.loads(raw)
        data["fetched_at"] = datetime.fromisoformat(data["fetched_at"])
        data["content"] = base64.b64decode(data["content"])
        return cls(**data, from_cache=from_cache)


@dataclass(frozen=True)
class RawResponse:
    url: str
    final_url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    max_bytes: int
    max_redirects: int
    truncate: bool = False  # keep the first max_bytes instead of failing


async def guarded_get(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: netguard.AddressPolicy,
    limits: Limits,
    accept: frozenset[str] | None,
    before_hop: HopHook | None = None,
) -> RawResponse:
    """GET ``url`` following redirects by hand; each hop is checked before it is sent.

    Returns whatever final status the server gave; raises FetchError otherwise.
    ``client`` should come from ``netguard.guarded_client`` (pins checked addresses).
    """
    current = _parse_url(url)
    for _ in range(limits.max_redirects + 1):
        await _check_target(current, policy)
        if before_hop is not None:
            await before_hop(current)
        result = await _exchange(client, current, limits, accept)
        if isinstance(result, httpx.URL):
            current = result
            continue
        status, content_type, charset, body = result
        return RawResponse(url, str(current), status, content_type, charset, body)
    raise FetchError("too_many_redirects", f"more than {limits.max_redirects} redirects", url=url)


def _parse_url(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
        netguard.validate_url(parsed)
    except (httpx.InvalidURL, netguard.UnsafeURL, TypeError) as exc:
        raise FetchError("bad_url", f"{str(url)[:200]!r}: {exc}", url=str(url)) from exc
    return parsed.copy_with(fragment=None)


async def _check_target(url: httpx.URL, policy: netguard.AddressPolicy) -> None:
    try:
        await netguard.resolve_checked(url.host, url.port or _default_port(url), policy)
    except netguard.BlockedAddress as exc:
        raise FetchError("blocked_address", str(exc), url=str(url)) from exc
    except OSError as exc:
        raise FetchError("network", f"cannot resolve {url.host}: {exc}", url=str(url)) from exc


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


async def _exchange(
    client: httpx.AsyncClient, url: httpx.URL, limits: Limits, accept: frozenset[str] | None
) -> httpx.URL | tuple[int, str, str | None, bytes]:
    """One request: the next URL for a redirect, else (status, type, charset, body)."""
    headers = {"Accept": ", ".join(sorted(accept)) if accept else "*/*"}
    try:
        async with asyncio.timeout(limits.timeout_s):
            request = client.build_request("GET", url, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    return _parse_url(response.url.join(location))
                mime, charset = _content_type(response)
                if accept is not None and 200 <= response.status_code < 300:
                    _check_type(mime, accept, url)
                body = await _read_capped(response, limits, url)
                return response.status_code, mime, charset, body
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FetchError(
            "timeout", f"no complete answer within {limits.timeout_s:g} s", url=str(url)
        ) from exc
    except netguard.BlockedAddress as exc:
        raise FetchError("blocked_address", str(exc), url=str(url)) from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise FetchError(
            "network", f"{url.host}: {exc or type(exc).__name__}", url=str(url)
        ) from exc


def _content_type(response: httpx.Response) -> tuple[str, str | None]:
    raw = response.headers.get("content-type", "")
    mime, _, params = raw.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return mime.strip().lower(), charset


def _check_type(mime: str, accept: frozenset[str], url: httpx.URL) -> None:
    if mime not in accept:
        allowed = ", ".join(sorted(accept))
        raise FetchError(
            "content_type",
            f"content type {mime or 'missing'!r} is not allowed (allowed: {allowed})",
            url=str(url),
        )


async def _read_capped(response: httpx.Response, limits: Limits, url: httpx.URL) -> bytes:
    declared = response.headers.get("content-length", "")
    if not limits.truncate and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError(
            "too_large", f"declared {declared} bytes, the limit is {limits.max_bytes}", url=str(url)
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limits.max_bytes:
            if limits.truncate:
                return bytes(body[: limits.max_bytes])
            raise FetchError(
                "too_large",
                f"the body exceeds {limits.max_bytes} bytes; download stopped",
                url=str(url),
            )
    return bytes(body)


class PageCache:
    """In-process LRU of pages as JSON strings, bounded by entries and bytes, with a TTL."""

    def __init__(self, ttl_s: float, entries: int, max_bytes: int) -> None:
        self.ttl_s, self.entries, self.max_bytes = ttl_s, entries, max_bytes
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> FetchedPage | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return FetchedPage.from_json(item[1], from_cache=True)

    def put(self, key: str, page: FetchedPage) -> None:
        raw = page.to_json()
        if self.entries <= 0 or self.ttl_s <= 0 or len(raw) > self.max_bytes:
            return
        self._drop(key)
        self._data[key] = (time.monotonic() + self.ttl_s, raw)
        self._size += len(raw)
        while len(self._data) > self.entries or self._size > self.max_bytes:
            self._drop(next(iter(self._data)))

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._size -= len(item[1])


class IrisFetcher:
    """Fetch pages for research. Use as ``async with IrisFetcher(config) as iris``.

    Without ``client``, the fetcher builds a guarded httpx client from the config
    (and closes it); a caller-provided client should come from
    ``netguard.guarded_client`` with the same policy, and stays the caller's.
    """

    def __init__(
        self, config: FetcherConfig | None = None, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config or FetcherConfig()
        self.policy = netguard.AddressPolicy(self.config.allow_hosts)
        self._own_client = client is None
        self._client = client or netguard.guarded_client(
            self.policy, user_agent=self.config.user_agent, timeout_s=self.config.timeout_s
        )
        self._robots = RobotsCache(self.config.user_agent, self.config.robots_ttl_s)
        self._limiter = HostRateLimiter()
        self._cache = PageCache(
            self.config.cache_ttl_s, self.config.cache_entries, self.config.cache_max_bytes
        )

    async def __aenter__(self) -> IrisFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def fetch(self, url: str) -> FetchedPage:
        """The readable page at ``url``, from the cache when fresh; raises FetchError."""
        key = str(_parse_url(url))
        cached = self._cache.get(key)
        if cached is not None:
            return replace(cached, url=url)
        limits = Limits(self.config.timeout_s, self.config.max_bytes, self.config.max_redirects)
        raw = await guarded_get(
            self._client,
            url,
            policy=self.policy,
            limits=limits,
            accept=self.config.allowed_content_types,
            before_hop=self._before_hop,
        )
        if not 200 <= raw.status < 300:
            raise FetchError(
                "http_status",
                f"{raw.final_url} answered HTTP {raw.status}",
                url=url,
                status=raw.status,
            )
        page = await asyncio.to_thread(_build_page, raw)
        self._cache.put(key, page)
        return page

    async def _before_hop(self, url: httpx.URL) -> None:
        refusal = await self._robots.refusal(url, self._load_robots)
        if refusal is not None:
            raise FetchError("robots", refusal, url=str(url))
        delay = await self._robots.crawl_delay(url, self._load_robots) or 0.0
        interval = max(self.config.min_interval_s, min(delay, self.config.max_crawl_delay_s))
        await self._limiter.wait(url.host, interval)

    async def _pace(self, url: httpx.URL) -> None:
        await self._limiter.wait(url.host, self.config.min_interval_s)

    async def _load_robots(self, robots_url: str) -> RobotsFile:
        limits = Limits(self.config.timeout_s, MAX_ROBOTS_BYTES, 5, truncate=True)
        try:
            raw = await guarded_get(
                self._client,
                robots_url,
                policy=self.policy,
                limits=limits,
                accept=None,
                before_hop=self._pace,
            )
        except FetchError as exc:
            if exc.reason == "blocked_address":
                raise
            if exc.reason == "too_many_redirects":
                return RobotsFile(status=300)  # unavailable: RFC 9309 allows crawling
            return RobotsFile(status=None)  # unreachable: disallow for now
        return RobotsFile(raw.status, readable.decode(raw.body, raw.charset))


def _build_page(raw: RawResponse) -> FetchedPage:
    content = b""
    if raw.content_type in HTML_TYPES:
        found = readable.html_to_readable(raw.body, raw.charset, raw.final_url)
    elif raw.content_type in TEXT_TYPES or raw.content_type.startswith("text/"):
        markdown = raw.content_type.endswith("markdown")
        found = readable.text_to_readable(raw.body, raw.charset, markdown=markdown)
    else:
        found, content = readable.Readable(title="", text=""), raw.body
    return FetchedPage(
        url=raw.url,
        final_url=raw.final_url,
        status=raw.status,
        content_type=raw.content_type,
        title=found.title,
        text=found.text,
        fetched_at=datetime.now(UTC),
        content=content,
    )
