"""Origin checks for WebSocket upgrades, on normalised origins (scheme, host, port)."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise(origin: str) -> str | None:
    """``HTTP://Example.COM:80`` -> ``http://example.com:80``; None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{parts.hostname.lower()}:{port or DEFAULT_PORTS[scheme]}"


def origin_allowed(origin: str | None, own_origin: str, allowed: list[str]) -> bool:
    """No Origin header means a non-browser client (it still needs a ticket)."""
    if origin is None:
        return True
    candidate = normalise(origin)
    if candidate is None:
        return False
    return candidate in {normalise(o) for o in [own_origin, *allowed]} - {None}
