"""Shared pieces of the HTTP providers: client construction and error mapping."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from mongars.errors import ProviderError, ProviderTimeout, ProviderUnavailable


def make_client(base_url: str, timeout_s: float, api_key: str = "") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
    )


@asynccontextmanager
async def provider_errors(what: str) -> AsyncIterator[None]:
    """Turn transport failures into the provider errors the API maps to 502/503/504."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise ProviderUnavailable(f"{what} is unreachable (connect timed out)") from exc
    except httpx.RemoteProtocolError as exc:  # reached, but it broke the exchange
        raise ProviderError(f"{what} closed the connection mid-answer: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"{what} timed out") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"{what} is unreachable: {exc}") from exc


async def raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    body = (await response.aread()).decode("utf-8", "replace")
    message = body[:500]
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        message = str(err.get("message", err) if isinstance(err, dict) else err)[:500]
    except ValueError:
        pass
    detail = f"{what} answered HTTP {response.status_code}: {message}"
    if response.status_code in (429, 503):
        raise ProviderUnavailable(detail)
    if response.status_code == 504:
        raise ProviderTimeout(detail)
    raise ProviderError(detail)


def estimate_tokens(text: str) -> int:
    """Upper-bound estimate when the server offers no tokenizer: ~3 bytes a token."""
    return math.ceil(len(text.encode("utf-8")) / 3) + 1


def parse_json(line: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProviderError(f"{what} sent malformed JSON: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ProviderError(f"{what} sent an unexpected payload: {line[:200]!r}")
    return data
