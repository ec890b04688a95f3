"""Security headers for the console's pages and assets (sent by
:class:`mongars.http_security.SecurityHeaders`, which gives the API its own set).

Scoped to the console's paths: the interactive /docs page needs inline scripts.
"""

from __future__ import annotations

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
    (b"cross-origin-resource-policy", b"same-origin"),
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
