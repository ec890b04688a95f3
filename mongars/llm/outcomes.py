"""How an attempt at an HTTP provider ended, and what the caller sees.

===============================  =======  =================  ============
what happened                    retried  circuit breaker    outcome
===============================  =======  =================  ============
streamed to the end              -        success            ok
refused, reset, dropped early    yes      failure            failed
HTTP 500, 502, 503, other 5xx    yes      failure            failed
read timeout, HTTP 504           no       failure            timeout
HTTP 409/503 with a scaling sign yes      (endpoint is up)   scaling
HTTP 429                         yes      (endpoint is up)   rate_limited
other HTTP 4xx                   no       (endpoint is up)   rejected
malformed answer, error line     no       (endpoint is up)   bad_answer
===============================  =======  =================  ============

"Retried" holds only before the first streamed item (mongars/llm/resilience.py).
A scaling sign is a ``Retry-After`` header, or a body that mentions scaling, replicas,
backpressure, queues, overload, capacity or a busy server (Ray Serve's backpressure
answer: 503 "... max_queued_requests ..."); a 503 without one is an endpoint failure,
a 409 without one a rejection. A read timeout is not retried: the user has already
waited the whole ``timeout_s``, and the request may still be running there.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

import httpx

from mongars.errors import DomainError, ProviderError, ProviderTimeout, ProviderUnavailable

SCALING_SIGNS = re.compile(
    r"scal|replica|backpressure|queue|overload|capacity|busy|try again later", re.IGNORECASE
)


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SCALING = "scaling"
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"
    BAD_ANSWER = "bad_answer"
    CANCELLED = "cancelled"
    ERROR = "error"  # an unexpected exception (a defect), not the endpoint's fault


BREAKER_FAILURES = {Outcome.FAILED, Outcome.TIMEOUT}
RETRIED = {Outcome.FAILED, Outcome.SCALING, Outcome.RATE_LIMITED}
COUNTED_FAILURES = {
    Outcome.FAILED,
    Outcome.TIMEOUT,
    Outcome.REJECTED,
    Outcome.BAD_ANSWER,
    Outcome.ERROR,
}


@dataclass
class Failure:
    outcome: Outcome
    error: BaseException  # what the caller sees: a domain error, or a cancellation
    retry_after: float | None = None


class StatusError(Exception):
    """An error answer, raised where it is read and classified where it is caught."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure.error))
        self.failure = failure


def endpoint_label(url: str) -> str:
    """The URL without user:password@ (never in metrics or logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rpartition("@")[2]
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}".rstrip("/")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(body: str) -> str:
    """The message of an error answer: JSON ``error``/``message`` fields, else the text."""
    message = body[:500]
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        message = str(err.get("message", err) if isinstance(err, dict) else err)[:500]
    except ValueError:
        pass
    return message


def classify_status(response: httpx.Response, what: str) -> Failure:
    """An error answer (the body already read) as an outcome and a domain error."""
    status, body = response.status_code, response.text
    detail = f"{what} answered HTTP {status}: {error_message(body)}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        return Failure(Outcome.RATE_LIMITED, ProviderUnavailable(detail), retry_after)
    if status in (409, 503) and (retry_after is not None or SCALING_SIGNS.search(body)):
        return Failure(Outcome.SCALING, ProviderUnavailable(detail), retry_after)
    if status == 503:
        return Failure(Outcome.FAILED, ProviderUnavailable(detail))
    if status == 504:
        return Failure(Outcome.TIMEOUT, ProviderTimeout(detail))
    if status >= 500:
        return Failure(Outcome.FAILED, ProviderError(detail))
    return Failure(Outcome.REJECTED, ProviderError(detail))


def classify_exception(exc: BaseException, what: str) -> Failure:
    """A failed attempt as an outcome and the error the caller sees."""
    if isinstance(exc, StatusError):
        return exc.failure
    if isinstance(exc, DomainError):
        return Failure(Outcome.BAD_ANSWER, exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure(
            Outcome.FAILED, ProviderUnavailable(f"{what} is unreachable (connect timed out)")
        )
    if isinstance(exc, httpx.RemoteProtocolError):  # reached, but it broke the exchange
        return Failure(
            Outcome.FAILED, ProviderError(f"{what} closed the connection mid-answer: {exc}")
        )
    if isinstance(exc, httpx.TimeoutException):
        return Failure(Outcome.TIMEOUT, ProviderTimeout(f"{what} timed out"))
    if isinstance(exc, httpx.TransportError):
        return Failure(Outcome.FAILED, ProviderUnavailable(f"{what} is unreachable: {exc}"))
    if isinstance(exc, Exception):
        return Failure(Outcome.ERROR, exc)
    return Failure(Outcome.CANCELLED, exc)  # CancelledError, GeneratorExit
