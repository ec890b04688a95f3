"""Security headers on every HTTP response, and CORS (closed unless configured).

One pure ASGI middleware (BaseHTTPMiddleware would buffer SSE streams), added last so
that it wraps everything else: the console's pages get their CSP
(:mod:`mongars.web.security`), the API's JSON, SSE, ``/metrics`` and error responses
(401, 404, 413, 422, 429...) get a strict set that forbids framing, sniffing, caching
and cross-site embedding. An unhandled exception still gets a JSON 500 with these
headers (Starlette's own 500 answer is produced outside every middleware).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mongars.errors import error_body
from mongars.settings import CorsSettings
from mongars.web.security import HEADERS as CONSOLE_HEADERS
from mongars.web.security import is_console_path

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
# Nothing an API response could load or run, and no page may frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        """``docs_paths``: the interactive API docs, which need their inline scripts."""
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSocket: its origin check is in mongars.realtime
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._secure(scope, MutableHeaders(scope=message))
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            if not started:  # then re-raised, for the server's log
                body = error_body("internal server error", "internal_error")
                await JSONResponse(body, status_code=500)(scope, receive, send_secured)
            raise

    def _secure(self, scope: Scope, headers: MutableHeaders) -> None:
        path: str = scope["path"]
        if is_console_path(path):
            for raw_name, raw_value in CONSOLE_HEADERS:
                headers[raw_name.decode()] = raw_value.decode()
        else:
            for name, value in API_HEADERS.items():
                headers[name] = value
            if path not in self.docs_paths:
                headers["content-security-policy"] = API_CSP
            # SSE keeps its own no-cache; everything else is per user and never cached.
            headers.setdefault("cache-control", "no-store")
        if scope.get("scheme") == "https":
            headers["strict-transport-security"] = HSTS


def add_http_security(app: FastAPI, cors: CorsSettings) -> None:
    """CORS when origins are configured, then the security headers around everything."""
    if cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors.allow_origins,
            allow_credentials=cors.allow_credentials,
            allow_methods=[m.upper() for m in cors.allow_methods],
            allow_headers=cors.allow_headers,
            expose_headers=cors.expose_headers,
            max_age=cors.max_age_s,
        )
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeaders, docs_paths=[p for p in docs if p])
