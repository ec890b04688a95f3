"""Page rendering: Jinja2 templates, sanitised Markdown, HTML error pages.

Markdown from users and the model is rendered with markdown-it-py with raw
HTML disabled, then cleaned by nh3 (an allow-list HTML sanitiser), so no
message can inject a script, a style, an event handler or a foreign resource.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import nh3
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from mongars.errors import DomainError
from mongars.web.session import CSRF_COOKIE, LoginRequired, csrf_nonce, csrf_token, set_cookie

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(
    ["table", "strikethrough"]
)
_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "a",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}


def markdown(text: str) -> Markup:
    """Sanitised HTML for a message (safe to insert unescaped)."""
    html = _md.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


def http_url(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL (safe for an ``href``), else None."""
    if not isinstance(url, str) or len(url) > 4096:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


templates.env.filters["markdown"] = markdown
templates.env.filters["http_url"] = http_url


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page; every page gets the CSRF token for its forms."""
    runtime = request.app.state.runtime
    nonce = csrf_nonce(request)
    ctx = {
        "request": request,
        "csrf_token": csrf_token(runtime.secret, nonce),
        "flash": request.cookies.get("mongars_flash"),
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers=headers
    )
    if request.cookies.get(CSRF_COOKIE) != nonce:
        set_cookie(response, request, CSRF_COOKIE, nonce, 7 * 24 * 3600)
    if ctx["flash"]:
        response.delete_cookie("mongars_flash", path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


def safe_next(target: str | None, default: str = "/chat") -> str:
    """Only same-site paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """303 after a successful POST; ``flash`` is shown once on the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            "mongars_flash", flash[:300], max_age=60, path="/", samesite="lax", httponly=True
        )
    return response


def error_page(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    context = {"status": status, "detail": detail, "user": getattr(request.state, "user", None)}
    return render(request, "error.html", context, status_code=status, headers=headers)


def validation_detail(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        problems.append(f"{where or 'input'}: {err.get('msg', 'invalid')}")
    return "; ".join(problems)


class HtmlRoute(APIRoute):
    """Console routes answer errors with pages: the login page when there is no
    session, a readable error page (same status) for domain and validation errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired:
                target = request.url.path if request.method == "GET" else "/"
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except DomainError as exc:
                return error_page(request, exc.status, exc.detail, exc.headers)
            except RequestValidationError as exc:
                return error_page(request, 422, validation_detail(exc))

        return handler
