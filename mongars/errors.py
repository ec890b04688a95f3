"""Domain errors and their one mapping to HTTP.

Services raise these; :func:`install_error_handlers` turns every one of them
into a stable JSON body ``{"detail": str, "code": str}`` with the right status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class InvalidInput(DomainError):
    status, code = 422, "invalid_input"


class FeatureDisabled(DomainError):
    """The request needs a feature this server has not enabled (e.g. image input)."""

    status, code = 400, "feature_disabled"


class NotAuthenticated(DomainError):
    status, code = 401, "not_authenticated"

    def __init__(self, detail: str = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class EgressBlocked(DomainError):
    """An outbound connection refused by the offline guard (MONGARS_OFFLINE). Not an
    OSError, so that network libraries pass it on instead of retrying or rewording it."""

    status, code = 503, "egress_blocked"


class ContextTooLarge(DomainError):
    status, code = 413, "context_too_large"


class MessageTooLong(DomainError):
    status, code = 413, "message_too_long"


class PayloadTooLarge(DomainError):
    status, code = 413, "too_large"


class UnsupportedMediaType(DomainError):
    status, code = 415, "unsupported_media_type"


class RateLimited(DomainError):
    status, code = 429, "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class InternalError(DomainError):
    """A bug, reported without details (they are in the server log)."""

    status, code = 500, "internal_error"


class Overloaded(DomainError):
    """Every database connection stayed busy past the pool's timeout: the server is
    saturated (the request itself was fine); the client may retry."""

    status, code = 503, "overloaded"


POOL_EXHAUSTED = "the server is overloaded (no database connection came free in time); retry"


class GenerationCancelled(DomainError):
    status, code = 409, "cancelled"


class ProviderError(DomainError):
    """The model answered badly (bad response, empty output)."""

    status, code = 502, "provider_error"


class EmptyOutput(ProviderError):
    code = "empty_output"


class ExtraNotInstalled(DomainError):
    """The feature needs an optional extra this install lacks (e.g. training without
    PyTorch: mongars.extras)."""

    status, code = 501, "extra_not_installed"


class ProviderUnavailable(DomainError):
    """The model could not be reached or is not loaded."""

    status, code = 503, "provider_unavailable"


class ProviderTimeout(DomainError):
    status, code = 504, "provider_timeout"


class SecretsUnavailable(DomainError):
    """Secrets could not be read from their backend (Vault unreachable, denied, a key
    missing): raised at start, which then fails; never replaced by a default."""

    status, code = 503, "secrets_unavailable"


def error_for_code(code: str, detail: str) -> DomainError:
    """Rebuild a domain error from its code (events carry codes across processes)."""
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        if cls.code == code and cls.__init__ is DomainError.__init__:
            return cls(detail)
        pending.extend(cls.__subclasses__())
    return ProviderError(detail)


def data_error(exc: DBAPIError) -> InvalidInput | None:
    """A value the database refused (SQLSTATE class 22, "data exception": NUL in text,
    an id past PostgreSQL's INTEGER...) came from the request: a 422, not a 500. None
    for every other database error (those are ours)."""
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    if not state.startswith("22"):
        return None
    reason = "text must not contain NUL characters" if state == "22021" else "a value is invalid"
    return InvalidInput(f"the database refused a value of this request: {reason}")


def error_body(detail: str, code: str) -> dict[str, str]:
    return {"detail": detail, "code": code}


# (status, detail, code, headers) -> the response, for paths with another error shape.
ErrorRenderer = Callable[[int, str, str, dict[str, str] | None], JSONResponse]


def install_error_handlers(app: FastAPI, shapes: Mapping[str, ErrorRenderer] | None = None) -> None:
    """``shapes``: path prefix -> renderer, for APIs that promise another error body
    (``/v1/``: OpenAI's), even for a path no route matches."""
    shapes = shapes or {}

    def respond(
        request: Request, status: int, detail: str, code: str, headers: dict[str, str] | None
    ) -> JSONResponse:
        for prefix, render in shapes.items():
            if request.url.path.startswith(prefix):
                return render(status, detail, code, headers)
        return JSONResponse(error_body(detail, code), status_code=status, headers=headers)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return respond(request, exc.status, exc.detail, exc.code, exc.headers)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        return respond(request, exc.status_code, str(exc.detail), code, headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: "
            f"{err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return JSONResponse(
            {"detail": "; ".join(problems), "code": "invalid_input", "errors": _jsonable(exc)},
            status_code=422,
        )

    async def on_pool_timeout(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database pool exhausted: %s", exc)
        return await on_domain(request, Overloaded(POOL_EXHAUSTED, headers={"Retry-After": "2"}))

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        error = data_error(exc)
        if error is None:
            raise exc  # a 500, logged (mongars.http_security)
        log.info("refused a value the database cannot take: %s", exc.orig)
        return await on_domain(request, error)

    async def on_surrogate(request: Request, exc: Exception) -> JSONResponse:
        """A lone surrogate (a JSON ``\\ud800`` escape) reached text storage: SQLite
        cannot encode it. Only requests bring those in."""
        assert isinstance(exc, UnicodeEncodeError)
        if exc.reason != "surrogates not allowed":
            raise exc
        detail = "text must be valid Unicode (a lone surrogate escape was sent)"
        return await on_domain(request, InvalidInput(detail))

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(UnicodeEncodeError, on_surrogate)
    app.add_exception_handler(PoolTimeout, on_pool_timeout)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _jsonable(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
