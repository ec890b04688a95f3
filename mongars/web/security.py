"""Security headers for the console's pages and assets.

Scoped to the console's paths so the API (and the interactive /docs page, which
needs inline scripts) keep their own behaviour.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
CONSOLE_PREFIXES = (
    "/login",
    "/logout",
    "/setup",
    "/chat",
    "/memory",
    "/documents",
    "/admin",
    "/account",
)
STATIC_PREFIX = "/static/"


def is_console_path(path: str) -> bool:
    return (
        path == "/"
        or path.startswith(STATIC_PREFIX)
        or any(path == p or path.startswith(p + "/") for p in CONSOLE_PREFIXES)
    )


class ConsoleSecurityHeaders:
    """Adds CSP (no inline scripts, frame-ancestors 'none') and friends to console responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] not in dict(HEADERS)]
                message["headers"] = headers + HEADERS
                if scope.get("scheme") == "https":
                    message["headers"].append((b"strict-transport-security", b"max-age=31536000"))
            await send(message)

        await self.app(scope, receive, send_with_headers)
