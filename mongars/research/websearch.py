"""Web search for research: a SearxNG client and a DuckDuckGo HTML fallback.

Both go through the fetcher's guarded exchange (SSRF guard on every hop,
manual redirects, size and time caps, per-host pacing) and raise ``FetchError``
on failure. robots.txt is not consulted: a search request is a query the
operator configured, not crawling. A SearxNG instance is usually the operator's
own, often on a private address: ``allow_private=True`` lets exactly its host
through the guard (nothing else). SearxNG must have ``json`` in
``search.formats`` of its settings.yml, or it answers 403.

    async with SearxNGSearch("http://searx.lan:8888", allow_private=True) as search:
        hits = await search.search("rust borrow checker", limit=5)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import lxml.html
from lxml import etree

from mongars.research import netguard
from mongars.research.fetcher import (
    FetcherConfig,
    FetchError,
    Limits,
    RawResponse,
    guarded_get,
)
from mongars.research.readable import decode
from mongars.research.robots import HostRateLimiter

DUCKDUCKGO_HTML = "https://html.duckduckgo.com/html/"
MAX_LIMIT = 50


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str


class WebSearch(Protocol):
    async def search(self, query: str, limit: int = 5) -> list[SearchHit]: ...


class _GuardedSearch:
    """Client ownership, pacing and the guarded GET shared by the search backends."""

    accept: frozenset[str] = frozenset()

    def __init__(
        self,
        endpoint: str,
        *,
        allow_private: bool,
        config: FetcherConfig | None,
        client: httpx.AsyncClient | None,
    ) -> None:
        self.config = config or FetcherConfig()
        self.endpoint = endpoint
        host = httpx.URL(endpoint).host
        extra = {host} if allow_private and host else set()
        self.policy = netguard.AddressPolicy(self.config.allow_hosts | extra)
        self._own_client = client is None
        self._client = client or netguard.guarded_client(
            self.policy, user_agent=self.config.user_agent, timeout_s=self.config.timeout_s
        )
        self._limiter = HostRateLimiter()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def _pace(self, url: httpx.URL) -> None:
        await self._limiter.wait(url.host, self.config.min_interval_s)

    async def _get(self, url: str) -> RawResponse:
        limits = Limits(self.config.timeout_s, self.config.max_bytes, self.config.max_redirects)
        raw = await guarded_get(
            self._client,
            url,
            policy=self.policy,
            limits=limits,
            accept=self.accept,
            before_hop=self._pace,
        )
        if not 200 <= raw.status < 300:
            hint = self._status_hint(raw.status)
            raise FetchError(
                "http_status",
                f"{raw.final_url} answered HTTP {raw.status}{hint}",
                url=url,
                status=raw.status,
            )
        return raw

    def _status_hint(self, status: int) -> str:
        return ""


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


class SearxNGSearch(_GuardedSearch):
    """``GET {base}/search?q=...&format=json`` on a SearxNG instance."""

    accept = frozenset({"application/json"})

    def __init__(
        self,
        base_url: str,
        *,
        allow_private: bool = False,
        config: FetcherConfig | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url.rstrip("/") + "/search",
            allow_private=allow_private,
            config=config,
            client=client,
        )

    async def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        url = httpx.URL(self.endpoint, params={"q": query, "format": "json"})
        raw = await self._get(str(url))
        try:
            data = json.loads(decode(raw.body, raw.charset))
            results = data["results"]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise FetchError(
                "bad_response", f"SearxNG sent an unexpected answer: {exc}", url=str(url)
            ) from exc
        hits = [_searx_hit(item) for item in results if isinstance(item, dict)]
        return _dedupe([h for h in hits if h is not None], _clamp(limit))

    def _status_hint(self, status: int) -> str:
        if status == 403:
            return " (is `json` listed in search.formats of SearxNG's settings.yml?)"
        return ""


def _searx_hit(item: dict[str, Any]) -> SearchHit | None:
    url = item.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in netguard.ALLOWED_SCHEMES:
        return None
    title, snippet = item.get("title"), item.get("content")
    return SearchHit(
        title=" ".join(str(title or url).split()),
        url=url,
        snippet=" ".join(str(snippet or "").split()),
    )


class DuckDuckGoHTMLSearch(_GuardedSearch):
    """DuckDuckGo's JavaScript-free results page, parsed with lxml (ads skipped)."""

    accept = frozenset({"text/html"})

    def __init__(
        self,
        *,
        endpoint: str = DUCKDUCKGO_HTML,
        allow_private: bool = False,
        config: FetcherConfig | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(endpoint, allow_private=allow_private, config=config, client=client)

    async def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        url = str(httpx.URL(self.endpoint, params={"q": query}))
        raw = await self._get(url)
        hits = parse_duckduckgo(decode(raw.body, raw.charset, html=True), url)
        return _dedupe(hits, _clamp(limit))


def parse_duckduckgo(html: str, page_url: str) -> list[SearchHit]:
    """Result links of a DuckDuckGo HTML page; redirect links are unwrapped (``uddg``)."""
    if not html.strip():
        return []
    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8"))
    except (etree.ParserError, ValueError):
        return []
    hits = []
    for result in tree.xpath(f"//div[{_has_class('result')}]"):
        if "result--ad" in (result.get("class") or ""):
            continue
        links = result.xpath(f".//a[{_has_class('result__a')}]")
        if not links:
            continue
        target = _unwrap(urljoin(page_url, links[0].get("href") or ""))
        snippets = result.xpath(f".//*[{_has_class('result__snippet')}]")
        if target is None:
            continue
        hits.append(
            SearchHit(
                title=" ".join(links[0].text_content().split()),
                url=target,
                snippet=" ".join(snippets[0].text_content().split()) if snippets else "",
            )
        )
    return hits


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def _unwrap(href: str) -> str | None:
    parts = urlsplit(href)
    if parts.path.endswith("/l/"):
        wrapped = parse_qs(parts.query).get("uddg")
        href = wrapped[0] if wrapped else ""
        parts = urlsplit(href)
    return href if parts.scheme in netguard.ALLOWED_SCHEMES and parts.netloc else None


def _dedupe(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    seen: set[str] = set()
    out = []
    for hit in hits:
        if hit.url not in seen:
            seen.add(hit.url)
            out.append(hit)
    return out[:limit]


class FallbackSearch:
    """Tries each backend in order; the next one is used when one fails (FetchError)."""

    def __init__(self, backends: Sequence[WebSearch]) -> None:
        if not backends:
            raise ValueError("FallbackSearch needs at least one backend")
        self.backends = list(backends)

    async def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        error: FetchError | None = None
        for backend in self.backends:
            try:
                return await backend.search(query, limit)
            except FetchError as exc:
                error = exc
        assert error is not None
        raise error
