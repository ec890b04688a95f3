"""Secrets out of log lines, whoever logs them.

Libraries log what passes through them: uvicorn's access log prints each request's
query string, and the WebSocket handshake uvicorn logs at DEBUG prints the request
line (the ticket in ``/ws/chat?t=``) and every header (a browser's session cookie).
A handler with :class:`RedactSecrets` writes such lines with the values of sensitive
query parameters and headers, bearer tokens, JWTs and password hashes replaced by
``<redacted>``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "<redacted>"
SENSITIVE_PARAMS = (
    "t",  # the WebSocket ticket (/ws/chat?t=)
    "ticket",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "invite",
    "signature",
    "sig",
    "code",
)
SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")

_PARAMS = "|".join(SENSITIVE_PARAMS)
_HEADERS = "|".join(SENSITIVE_HEADERS)
_QUERY = re.compile(rf"(?<=[?&])({_PARAMS})=[^&#\s\"'<>]*", re.IGNORECASE)
_HEADER = re.compile(rf"^([<>]?\s*(?:{_HEADERS})\s*:\s*)\S.*$", re.IGNORECASE | re.MULTILINE)
_BEARER = re.compile(r"\b(Bearer)\s+[\w.~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]+")
# a password hash, as SQL parameters logged at DEBUG show it (offline guessing material)
_ARGON2 = re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[\w+/]+\$[\w+/]+")


def redact(text: str) -> str:
    """``text`` with the secret values it carries replaced."""
    text = _HEADER.sub(rf"\g<1>{REDACTED}", text)
    text = _QUERY.sub(rf"\g<1>={REDACTED}", text)
    text = _BEARER.sub(rf"\g<1> {REDACTED}", text)
    text = _ARGON2.sub(REDACTED, text)
    return _JWT.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message (or traceback) carries a secret. Arguments are
    redacted one by one where that suffices, so formatters that read them (uvicorn's
    access log) still work; otherwise the message is replaced by its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it
            return True
        clean = redact(message)
        if clean != message:
            args = record.args
            if isinstance(args, tuple):
                cleaned = tuple(redact(a) if isinstance(a, str) else a for a in args)
                if _format(record.msg, cleaned) == clean:
                    record.args = cleaned
                    return True
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            if redact(trace) != trace:
                record.exc_text = redact(trace)
        return True


def _format(msg: object, args: tuple[object, ...]) -> str | None:
    try:
        return str(msg) % args
    except (TypeError, ValueError):
        return None


def redact_handlers(logger: logging.Logger) -> None:
    """Add the filter to the logger's handlers (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with the filter on its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
