"""Domain errors and their one mapping to HTTP.

Services raise these; :func:`install_error_handlers` turns every one of them
into a stable JSON body ``{"detail": str, "code": str}`` with the right status.
"""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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


class GenerationCancelled(DomainError):
    status, code = 409, "cancelled"


class ProviderError(DomainError):
    """The model answered badly (bad response, empty output)."""

    status, code = 502, "provider_error"


class EmptyOutput(ProviderError):
    code = "empty_output"


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


def error_body(detail: str, code: str) -> dict[str, str]:
    return {"detail": detail, "code": code}


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return JSONResponse(
            error_body(exc.detail, exc.code), status_code=exc.status, headers=exc.headers
        )

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(str(exc.detail), code),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

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

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _jsonable(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
