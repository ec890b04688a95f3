"""Single-use WebSocket tickets: HMAC-signed, bound to a user, short-lived.

A ticket is ``v1.<user_id>.<expires unix>.<nonce>.<signature>``. Browsers
cannot put an Authorization header on a WebSocket, so they trade their token
for a ticket and pass it as ``?t=``; its nonce is recorded on first use
(in the database, so a replay fails on every API process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from mongars.errors import NotAuthenticated

VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: int
    expires_at: int
    nonce: str


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(secret.encode(), f"ws-ticket|{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_ticket(secret: str, user_id: int, ttl_s: int) -> str:
    body = f"{VERSION}.{user_id}.{int(time.time()) + ttl_s}.{secrets.token_urlsafe(18)}"
    return f"{body}.{_sign(secret, body)}"


def verify_ticket(secret: str, ticket: str, now: float | None = None) -> Ticket:
    """Check signature and expiry (not single use: the caller records the nonce)."""
    parts = ticket.split(".")
    if len(parts) != 5 or parts[0] != VERSION or len(ticket) > 200:
        raise NotAuthenticated("malformed ticket")
    body, signature = ".".join(parts[:4]), parts[4]
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    if not hmac.compare_digest(signature.encode(), _sign(secret, body).encode()):
        raise NotAuthenticated("invalid ticket")
    try:
        user_id, expires_at = int(parts[1]), int(parts[2])
    except ValueError as exc:
        raise NotAuthenticated("malformed ticket") from exc
    if expires_at < (now if now is not None else time.time()):
        raise NotAuthenticated("ticket expired")
    return Ticket(user_id=user_id, expires_at=expires_at, nonce=parts[3])
