"""Console sessions and CSRF protection.

The session cookie holds a regular access token (the same JWT as ``POST /token``:
revocable by logout, invalidated by a password change, the role read from the
database on every request). It is HttpOnly, SameSite=Lax, and Secure when the
request came over HTTPS, so page scripts never see it.

CSRF: every form carries ``csrf_token`` = HMAC(secret, nonce), the nonce living
in its own HttpOnly cookie; a POST whose token does not match its cookie, or
whose ``Origin`` is another site, is refused with 403. Scripts send the token
from ``<meta name="csrf-token">`` in an ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response

from mongars.auth.models import User
from mongars.auth.security import TokenClaims
from mongars.deps import AuthServiceDep, RuntimeDep, SessionDep, release_connection
from mongars.errors import DomainError, Forbidden, NotAuthenticated

SESSION_COOKIE = "mongars_session"
CSRF_COOKIE = "mongars_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class LoginRequired(Exception):
    """No valid session: the console redirects to the login page."""


class CsrfFailed(DomainError):
    status, code = 403, "csrf_failed"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def start_session(response: Response, request: Request, token: str, ttl_minutes: int) -> None:
    """Log the browser in, with a fresh CSRF nonce (the old one may have been seen)."""
    set_cookie(response, request, SESSION_COOKIE, token, ttl_minutes * 60)
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32), ttl_minutes * 60)


def end_session(response: Response, request: Request) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", httponly=True, samesite="lax", secure=is_https(request)
        )


def csrf_nonce(request: Request) -> str:
    """The browser's CSRF nonce; a new one (set by the page renderer) if it has none."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if _NONCE_RE.match(nonce):
        return nonce
    fresh = getattr(request.state, "new_csrf_nonce", None)
    if fresh is None:
        fresh = request.state.new_csrf_nonce = secrets.token_urlsafe(32)
    return str(fresh)


def csrf_token(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{nonce}".encode(), hashlib.sha256).hexdigest()


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin (old browsers, non-browser clients): the token alone decides.
        # "null" comes from privacy-sensitive contexts; refuse it.
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.headers.get("host", "").lower()


async def verify_csrf(request: Request, runtime: RuntimeDep) -> None:
    """Dependency for every state-changing console route."""
    if request.headers.get("sec-fetch-site") == "cross-site" or not _same_origin(request):
        raise CsrfFailed("cross-site request refused")
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not nonce or not sent:
        raise CsrfFailed("missing CSRF token: reload the page and try again")
    if not hmac.compare_digest(sent, csrf_token(runtime.secret, nonce)):
        raise CsrfFailed("invalid CSRF token: reload the page and try again")


CsrfChecked = Depends(verify_csrf)


async def get_web_principal(
    request: Request, auth: AuthServiceDep, session: SessionDep
) -> tuple[User, TokenClaims] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await auth.user_from_token(token)
    except NotAuthenticated:
        return None
    await release_connection(session)  # the console's chat waits for its answer too
    request.state.user = principal[0]  # for the navigation of error pages
    return principal


WebPrincipal = Annotated[tuple[User, TokenClaims] | None, Depends(get_web_principal)]


async def get_web_user_optional(principal: WebPrincipal) -> User | None:
    return principal[0] if principal else None


async def get_web_user(principal: WebPrincipal) -> User:
    if principal is None:
        raise LoginRequired()
    return principal[0]


async def get_web_admin(user: Annotated[User, Depends(get_web_user)]) -> User:
    if not user.is_admin:  # read from the database on this request
        raise Forbidden("admin rights required")
    return user


OptionalWebUser = Annotated[User | None, Depends(get_web_user_optional)]
WebUser = Annotated[User, Depends(get_web_user)]
WebAdmin = Annotated[User, Depends(get_web_admin)]
