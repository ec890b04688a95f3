"""A small website on 127.0.0.1 for the fetcher and search tests.

A Starlette app under uvicorn in a background thread, on a port the OS picks.
It serves articles, a robots.txt the test sets, redirects anywhere (``/redirect
?to=``), a slow page, endless and over-declared bodies, a fake SearxNG JSON API
and a fake DuckDuckGo results page, and records every request it receives.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.llm.fake_servers import serve

LOOPBACK = "127.0.0.1"

ARTICLE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Iris and the Rainbow</title>
<script>var tracking = "SCRIPT-NOISE";</script><style>body{color:red}</style></head>
<body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
<article><h1>Iris, messenger of the gods</h1>
<p>In Greek mythology Iris is the personification of the rainbow and a messenger of the
Olympian gods. She links the gods to humanity and travels with the speed of wind.</p>
<p>Her attributes are the caduceus and a water jug, with which she carries water from the
river Styx to put to sleep those who perjure themselves.</p></article>
<footer>Copyright 2026 Example Mythology Society</footer></body></html>"""

ASIDE_ONLY = (
    "<html><head><title>Aside</title></head><body><aside>Side note here</aside></body></html>"
)
MARKDOWN = "# Rainbow notes\n\nRed, orange, yellow, green, blue, indigo, violet.\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SEARX_RESULTS = [
    {
        "url": "https://en.example.org/wiki/Iris",
        "title": "Iris (mythology)",
        "content": "Iris is the goddess of the rainbow.",
    },
    {"url": "https://en.example.org/wiki/Iris", "title": "Duplicate", "content": "same url"},
    {"url": "javascript:alert(1)", "title": "Not a web page", "content": ""},
    {
        "url": "https://myths.example.net/iris",
        "title": "  Iris   myths ",
        "content": "Messenger\nof the gods",
    },
    {"url": "https://third.example.com/", "title": "Third", "content": "third hit"},
]
DDG_PAGE = """<html><body><div id="links">
<div class="result results_links result--ad"><a class="result__a" href="https://ads.example.com/buy">Buy rainbows</a>
<a class="result__snippet">An advert</a></div>
<div class="result results_links web-result"><h2><a rel="nofollow" class="result__a"
 href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fen.example.org%2Fwiki%2FIris&amp;rut=abc">Iris <b>mythology</b></a></h2>
<a class="result__snippet" href="#">Iris is the <b>goddess</b> of the rainbow.</a></div>
<div class="result results_links web-result"><a class="result__a" href="https://myths.example.net/iris">Iris myths</a>
<div class="result__snippet">Messenger of the gods</div></div>
<div class="result results_links web-result"><a class="result__a" href="ftp://files.example.com/x">FTP</a></div>
</div></body></html>"""


@dataclass
class Seen:
    path: str
    query: str
    at: float
    headers: dict[str, str]


@dataclass
class Site:
    """What the site answers (tests change it) and what it was asked."""

    robots: str = "User-agent: *\nDisallow: /\n\nUser-agent: monGARS-Iris\nDisallow: /private/\n"
    robots_status: int = 200
    searx_status: int = 200
    searx_body: str | None = None  # raw body instead of the JSON results
    slow_s: float = 5.0
    seen: list[Seen] = field(default_factory=list)
    streamed: dict[str, int] = field(default_factory=dict)
    url: str = ""
    _stopping: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        fresh = Site()
        self.robots, self.robots_status = fresh.robots, fresh.robots_status
        self.searx_status, self.searx_body = fresh.searx_status, fresh.searx_body
        self.seen.clear()
        self.streamed.clear()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def app(self) -> Starlette:
        def html(body: str) -> Response:
            return Response(body, media_type="text/html; charset=utf-8")

        async def robots(request: Request) -> Response:
            return PlainTextResponse(self.robots, status_code=self.robots_status)

        async def redirect(request: Request) -> Response:
            status = int(request.query_params.get("status", "302"))
            return RedirectResponse(request.query_params["to"], status_code=status)

        async def slow(request: Request) -> Response:
            deadline = time.monotonic() + self.slow_s
            while not self._stopping.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return html(ARTICLE)

        def endless(name: str, total: int) -> AsyncIterator[bytes]:
            async def chunks() -> AsyncIterator[bytes]:
                chunk = b"<p>" + b"rainbow " * 8190 + b"</p>\n"
                self.streamed[name] = 0
                while self.streamed[name] < total and not self._stopping.is_set():
                    self.streamed[name] += len(chunk)
                    yield chunk
                    await asyncio.sleep(0)

            return chunks()

        async def huge(request: Request) -> Response:
            return StreamingResponse(endless("huge", 256 * 2**20), media_type="text/html")

        async def huge_declared(request: Request) -> Response:
            size = 100 * 2**20
            headers = {"content-length": str(size)}
            body = endless("huge-declared", size)
            return StreamingResponse(body, media_type="text/html", headers=headers)

        async def search(request: Request) -> Response:
            if self.searx_body is not None:
                return Response(self.searx_body, self.searx_status, media_type="application/json")
            data = {"query": request.query_params.get("q"), "results": SEARX_RESULTS}
            return Response(json.dumps(data), self.searx_status, media_type="application/json")

        routes = [
            Route("/robots.txt", robots),
            Route("/article.html", lambda r: html(ARTICLE)),
            Route("/counted.html", lambda r: html(ARTICLE)),
            Route("/private/secret.html", lambda r: html(ARTICLE)),
            Route("/aside.html", lambda r: html(ASIDE_ONLY)),
            Route("/notes.md", lambda r: Response(MARKDOWN, media_type="text/markdown")),
            Route("/plain.txt", lambda r: PlainTextResponse("Plain rainbow facts.")),
            Route(
                "/latin1.txt",
                lambda r: Response(
                    "Café crème".encode("latin-1"), media_type="text/plain; charset=iso-8859-1"
                ),
            ),
            Route("/paper.pdf", lambda r: Response(PDF, media_type="application/pdf")),
            Route(
                "/binary",
                lambda r: Response(b"\x00\x01" * 64, media_type="application/octet-stream"),
            ),
            Route("/untyped", lambda r: Response(b"no type", headers={"content-type": ""})),
            Route("/missing.html", lambda r: Response("no such page", 404)),
            Route("/redirect", redirect),
            Route("/loop", lambda r: RedirectResponse("/loop", 302)),
            Route("/slow", slow),
            Route("/huge", huge),
            Route("/huge-declared", huge_declared),
            Route("/search", search),
            Route("/ddg/html/", lambda r: html(DDG_PAGE)),
        ]
        app = Starlette(routes=routes)
        site = self

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {k.decode(): v.decode() for k, v in scope["headers"]}
                site.seen.append(
                    Seen(scope["path"], scope["query_string"].decode(), time.monotonic(), headers)
                )
            await app(scope, receive, send)

        return recording  # type: ignore[return-value]


@contextmanager
def serve_site() -> Iterator[Site]:
    """Run a Site on 127.0.0.1 in a background thread; stop it cleanly on exit."""
    with serve(Site()) as site:
        yield site
