"""Web search clients against fake SearxNG and DuckDuckGo pages on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from mongars.research.fetcher import FetcherConfig, FetchError
from mongars.research.websearch import (
    DuckDuckGoHTMLSearch,
    FallbackSearch,
    SearchHit,
    SearxNGSearch,
    WebSearch,
)
from tests.research.webserver import Site, serve_site

FAST = FetcherConfig(min_interval_s=0.0, timeout_s=5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[Site]:
    with serve_site() as site:
        yield site


@pytest.fixture
def site(server: Site) -> Site:
    server.reset()
    return server


async def test_searxng_json_results(site: Site) -> None:
    async with SearxNGSearch(site.url + "/", allow_private=True, config=FAST) as searx:
        hits = await searx.search("iris rainbow", limit=5)
    assert hits == [
        SearchHit(
            "Iris (mythology)",
            "https://en.example.org/wiki/Iris",
            "Iris is the goddess of the rainbow.",
        ),
        SearchHit("Iris myths", "https://myths.example.net/iris", "Messenger of the gods"),
        SearchHit("Third", "https://third.example.com/", "third hit"),
    ]
    request = site.seen[-1]
    assert request.path == "/search"
    assert parse_qs(request.query) == {"q": ["iris rainbow"], "format": ["json"]}
    assert "robots.txt" not in " ".join(site.paths())


async def test_searxng_limit(site: Site) -> None:
    async with SearxNGSearch(site.url, allow_private=True, config=FAST) as searx:
        assert len(await searx.search("iris", limit=2)) == 2


async def test_private_searxng_needs_the_operator_flag(site: Site) -> None:
    async with SearxNGSearch(site.url, config=FAST) as searx:
        with pytest.raises(FetchError) as caught:
            await searx.search("iris")
    assert caught.value.reason == "blocked_address"
    assert site.seen == []


async def test_searxng_errors_are_clear(site: Site) -> None:
    async with SearxNGSearch(site.url, allow_private=True, config=FAST) as searx:
        site.searx_status, site.searx_body = 403, "{}"
        with pytest.raises(FetchError) as caught:
            await searx.search("iris")
        assert caught.value.reason == "http_status" and "search.formats" in str(caught.value)
        site.searx_status, site.searx_body = 200, "<html>not json</html>"
        with pytest.raises(FetchError) as caught:
            await searx.search("iris")
        assert caught.value.reason == "bad_response"


async def test_duckduckgo_html_results(site: Site) -> None:
    ddg = DuckDuckGoHTMLSearch(endpoint=f"{site.url}/ddg/html/", allow_private=True, config=FAST)
    async with ddg:
        hits = await ddg.search("iris mythology")
    assert hits == [
        SearchHit(
            "Iris mythology",
            "https://en.example.org/wiki/Iris",
            "Iris is the goddess of the rainbow.",
        ),
        SearchHit("Iris myths", "https://myths.example.net/iris", "Messenger of the gods"),
    ]
    assert parse_qs(site.seen[-1].query) == {"q": ["iris mythology"]}


async def test_fallback_uses_the_next_backend_when_one_fails(site: Site) -> None:
    broken = SearxNGSearch(site.url, config=FAST)  # private, no flag: refused
    ddg = DuckDuckGoHTMLSearch(endpoint=f"{site.url}/ddg/html/", allow_private=True, config=FAST)
    async with broken, ddg:
        backends: list[WebSearch] = [broken, ddg]
        hits = await FallbackSearch(backends).search("iris", limit=1)
        assert [h.url for h in hits] == ["https://en.example.org/wiki/Iris"]
        with pytest.raises(FetchError):
            await FallbackSearch([broken]).search("iris")
