"""The Iris fetcher against a real HTTP site on 127.0.0.1 (see webserver.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from mongars.research import netguard
from mongars.research.fetcher import FetchedPage, FetcherConfig, FetchError, IrisFetcher
from tests.research.webserver import PDF, Site, serve_site

LOCAL = frozenset({"127.0.0.1"})
FAST = FetcherConfig(allow_hosts=LOCAL, min_interval_s=0.0, timeout_s=5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[Site]:
    with serve_site() as site:
        yield site


@pytest.fixture
def site(server: Site) -> Site:
    server.reset()
    return server


async def fetch(url: str, config: FetcherConfig = FAST) -> FetchedPage:
    async with IrisFetcher(config) as iris:
        return await iris.fetch(url)


async def refused(url: str, config: FetcherConfig = FAST) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch(url, config)
    return caught.value


# -- pages and text -----------------------------------------------------------------------


async def test_html_page_gives_title_and_readable_text(site: Site) -> None:
    page = await fetch(f"{site.url}/article.html")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.title == "Iris and the Rainbow"
    assert "personification of the rainbow" in page.text
    assert "water from the\nriver Styx" not in page.text  # lines re-flowed by the extractor
    assert "river Styx" in page.text
    assert "SCRIPT-NOISE" not in page.text and "color:red" not in page.text
    assert "About us" not in page.text  # navigation is boilerplate
    assert page.from_cache is False and page.content == b""
    assert page.url == page.final_url == f"{site.url}/article.html"
    assert page.fetched_at.tzinfo is not None
    # Every request carried the fetcher's own user agent, robots.txt first.
    assert site.paths() == ["/robots.txt", "/article.html"]
    assert {s.headers["user-agent"] for s in site.seen} == {FetcherConfig().user_agent}


async def test_page_without_main_content_falls_back_to_plain_text(site: Site) -> None:
    page = await fetch(f"{site.url}/aside.html")
    assert page.title == "Aside"
    assert page.text == "Side note here"


async def test_text_markdown_and_pdf(site: Site) -> None:
    async with IrisFetcher(FAST) as iris:
        md = await iris.fetch(f"{site.url}/notes.md")
        plain = await iris.fetch(f"{site.url}/plain.txt")
        latin = await iris.fetch(f"{site.url}/latin1.txt")
        pdf = await iris.fetch(f"{site.url}/paper.pdf")
    assert (md.content_type, md.title) == ("text/markdown", "Rainbow notes")
    assert "indigo, violet" in md.text
    assert plain.text == "Plain rainbow facts."
    assert latin.text == "Café crème"
    assert (pdf.content_type, pdf.content, pdf.text) == ("application/pdf", PDF, "")


async def test_error_status_is_reported(site: Site) -> None:
    error = await refused(f"{site.url}/missing.html")
    assert (error.reason, error.status) == ("http_status", 404)


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "http://user:secret@127.0.0.1/", "http:///x"],
)
async def test_bad_urls_are_refused_before_any_request(site: Site, url: str) -> None:
    assert (await refused(url)).reason == "bad_url"
    assert site.seen == []


# -- robots.txt ---------------------------------------------------------------------------


async def test_robots_forbidden_path_is_refused(site: Site) -> None:
    # The site forbids everything to "*" but only /private/ to monGARS-Iris: own group wins.
    async with IrisFetcher(FAST) as iris:
        await iris.fetch(f"{site.url}/article.html")
        with pytest.raises(FetchError) as caught:
            await iris.fetch(f"{site.url}/private/secret.html")
    assert caught.value.reason == "robots"
    assert "/private/secret.html" not in site.paths()
    assert site.paths().count("/robots.txt") == 1  # cached per host


async def test_redirect_into_a_robots_forbidden_path_is_refused(site: Site) -> None:
    error = await refused(f"{site.url}/redirect?to=/private/secret.html")
    assert error.reason == "robots"
    assert "/private/secret.html" not in site.paths()


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (403, True), (503, False)])
async def test_robots_failures(site: Site, status: int, allowed: bool) -> None:
    site.robots_status = status
    if allowed:
        assert (await fetch(f"{site.url}/private/secret.html")).status == 200
    else:
        error = await refused(f"{site.url}/article.html")
        assert error.reason == "robots" and "could not be read" in str(error)
        assert "/article.html" not in site.paths()


# -- SSRF guard ---------------------------------------------------------------------------


async def test_loopback_is_refused_without_the_allow_list(site: Site) -> None:
    error = await refused(f"{site.url}/article.html", replace(FAST, allow_hosts=frozenset()))
    assert error.reason == "blocked_address" and "loopback" in str(error)
    assert site.seen == []  # not even robots.txt


async def test_loopback_is_allowed_with_the_allow_list(site: Site) -> None:
    assert (await fetch(f"{site.url}/plain.txt")).text == "Plain rainbow facts."


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://0.0.0.0:{port}/plain.txt",
        "http://localhost:{port}/plain.txt",  # only "127.0.0.1" is on the allow-list
    ],
)
async def test_redirect_to_a_private_address_is_refused(site: Site, target: str) -> None:
    target = target.format(port=site.port)
    error = await refused(f"{site.url}/redirect?to={target}")
    assert error.reason == "blocked_address"
    assert site.paths() == ["/robots.txt", "/redirect"]  # nothing reached on the target


async def test_redirect_to_another_scheme_is_refused(site: Site) -> None:
    assert (await refused(f"{site.url}/redirect?to=file:///etc/passwd")).reason == "bad_url"


async def test_redirects_are_followed_and_bounded(site: Site) -> None:
    page = await fetch(f"{site.url}/redirect?to=/plain.txt&status=301")
    assert page.url == f"{site.url}/redirect?to=/plain.txt&status=301"
    assert page.final_url == f"{site.url}/plain.txt"
    error = await refused(f"{site.url}/loop", replace(FAST, max_redirects=3))
    assert error.reason == "too_many_redirects"
    assert site.paths().count("/loop") == 4


# -- caps and content types ---------------------------------------------------------------


async def test_slow_endpoint_times_out(site: Site) -> None:
    started = time.monotonic()
    error = await refused(f"{site.url}/slow", replace(FAST, timeout_s=0.3))
    assert error.reason == "timeout"
    assert time.monotonic() - started < 3


async def test_endless_body_without_length_is_cut_off(site: Site) -> None:
    error = await refused(f"{site.url}/huge", replace(FAST, max_bytes=256 * 1024))
    assert error.reason == "too_large"
    await asyncio.sleep(0.2)  # let the server notice the disconnect
    assert 256 * 1024 < site.streamed["huge"] < 32 * 2**20  # of 256 MiB on offer


async def test_declared_oversize_is_refused_before_reading(site: Site) -> None:
    error = await refused(f"{site.url}/huge-declared", replace(FAST, max_bytes=1024 * 1024))
    assert error.reason == "too_large" and "declared" in str(error)
    await asyncio.sleep(0.2)
    assert site.streamed.get("huge-declared", 0) < 32 * 2**20  # of 100 MiB declared


@pytest.mark.parametrize("path", ["/binary", "/untyped"])
async def test_disallowed_content_type_is_refused(site: Site, path: str) -> None:
    error = await refused(f"{site.url}{path}")
    assert error.reason == "content_type"
    assert "text/html" in str(error)  # the message lists what is allowed


# -- pacing and cache ---------------------------------------------------------------------


async def test_requests_to_one_host_are_spaced(site: Site) -> None:
    async with IrisFetcher(replace(FAST, min_interval_s=0.3)) as iris:
        await iris.fetch(f"{site.url}/article.html")
        await iris.fetch(f"{site.url}/plain.txt")
    times = [s.at for s in site.seen]
    assert site.paths() == ["/robots.txt", "/article.html", "/plain.txt"]
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))


async def test_robots_crawl_delay_is_honoured(site: Site) -> None:
    site.robots = "User-agent: *\nCrawl-delay: 0.4\n"
    async with IrisFetcher(FAST) as iris:
        await iris.fetch(f"{site.url}/article.html")
        await iris.fetch(f"{site.url}/plain.txt")
    pages = [s.at for s in site.seen if s.path != "/robots.txt"]
    assert pages[1] - pages[0] >= 0.35


async def test_second_fetch_comes_from_the_cache(site: Site) -> None:
    async with IrisFetcher(FAST) as iris:
        first = await iris.fetch(f"{site.url}/counted.html")
        second = await iris.fetch(f"{site.url}/counted.html#section")
    assert site.paths().count("/counted.html") == 1
    assert (first.from_cache, second.from_cache) == (False, True)
    assert (second.title, second.text, second.status) == (first.title, first.text, first.status)
    assert second.fetched_at == first.fetched_at


async def test_cache_expires(site: Site) -> None:
    async with IrisFetcher(replace(FAST, cache_ttl_s=0.05)) as iris:
        await iris.fetch(f"{site.url}/counted.html")
        await asyncio.sleep(0.1)
        assert not (await iris.fetch(f"{site.url}/counted.html")).from_cache
    assert site.paths().count("/counted.html") == 2


def test_page_json_round_trip_keeps_bytes() -> None:
    from datetime import UTC, datetime

    page = FetchedPage("u", "f", 200, "application/pdf", "", "", datetime.now(UTC), False, PDF)
    assert FetchedPage.from_json(page.to_json(), from_cache=True) == replace(page, from_cache=True)


async def test_caller_provided_guarded_client_is_used_and_left_open(site: Site) -> None:
    client = netguard.guarded_client(
        netguard.AddressPolicy(LOCAL), user_agent="custom-agent/1", timeout_s=5
    )
    async with client:
        async with IrisFetcher(FAST, client=client) as iris:
            await iris.fetch(f"{site.url}/plain.txt")
        assert not client.is_closed
    assert site.seen[-1].headers["user-agent"] == "custom-agent/1"
