"""Typed errors for the server's error bodies ``{"detail": str, "code": str}``.

The class follows the HTTP status; ``code`` keeps the server's finer reason
(e.g. 409 ``training_busy`` vs ``conflict``), so callers can branch on either.
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class MongarsError(Exception):
    """Any error answer from a monGARS server (or a broken stream)."""

    def __init__(
        self, status: int, code: str, detail: str, *, response: httpx.Response | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.response = response


class BadRequestError(MongarsError):
    """400, e.g. ``feature_disabled``."""


class AuthenticationError(MongarsError):
    """401 ``not_authenticated``: missing, invalid, expired or revoked credentials."""


class PermissionDeniedError(MongarsError):
    """403 ``forbidden``."""


class NotFoundError(MongarsError):
    """404 ``not_found``."""


class ConflictError(MongarsError):
    """409: ``conflict``, ``cancelled``, ``training_busy``, ``adapter_state``..."""


class PayloadTooLargeError(MongarsError):
    """413: ``message_too_long``, ``context_too_large``, ``too_large``."""


class UnsupportedMediaTypeError(MongarsError):
    """415 ``unsupported_media_type``."""


class InvalidInputError(MongarsError):
    """422 ``invalid_input``: the request body or a parameter was refused."""


class RateLimitError(MongarsError):
    """429 ``rate_limited``; ``retry_after`` is the server's ``Retry-After`` in seconds."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, detail, response=response)
        self.retry_after = retry_after


class ServerError(MongarsError):
    """5xx: ``provider_error``, ``provider_unavailable``, ``provider_timeout``..."""


class StreamError(MongarsError):
    """A stream that ended with an ``error`` event after it had started."""


_BY_STATUS: dict[int, type[MongarsError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: InvalidInputError,
}


def error_class(status: int) -> type[MongarsError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, MongarsError)


def _body(response: httpx.Response) -> tuple[str, str]:
    try:
        body: Any = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body.get("code") or "error"), body["detail"]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # the OpenAI-style /v1
        err = body["error"]
        return str(err.get("code") or err.get("type") or "error"), str(err.get("message", ""))
    if isinstance(body, dict) and "detail" in body:
        return "invalid_input", json.dumps(body["detail"])
    return "http_error", response.text[:500] or response.reason_phrase


# Codes that reach a client without an HTTP status (WebSocket acks and chat.error events).
_CODE_STATUS = {
    "not_authenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "cancelled": 409,
    "message_too_long": 413,
    "context_too_large": 413,
    "invalid_input": 422,
    "invalid_message": 422,
    "invalid_json": 422,
    "rate_limited": 429,
}


def error_for_code(code: str, detail: str) -> MongarsError:
    """The typed error for a code that came without a status (0: unknown)."""
    status = _CODE_STATUS.get(code, 502 if code.startswith("provider") else 0)
    if status == 429:
        return RateLimitError(status, code, detail)
    cls = error_class(status) if status else StreamError
    return cls(status, code, detail)


def error_from_response(response: httpx.Response) -> MongarsError:
    """The typed error for a non-2xx response whose body has been read."""
    code, detail = _body(response)
    status = response.status_code
    if status == 429:
        raw = response.headers.get("Retry-After")
        retry = float(raw) if raw and raw.replace(".", "", 1).isdigit() else None
        return RateLimitError(status, code, detail, response=response, retry_after=retry)
    return error_class(status)(status, code, detail, response=response)
