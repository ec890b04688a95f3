"""Shared pieces of the HTTP providers: the base class over the resilient client
(several endpoints, breakers, retries: mongars/llm/resilience.py) and parsing helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mongars.errors import ProviderError
from mongars.llm.base import LLMProvider
from mongars.llm.resilience import Policy, ResilientClient

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics


class HTTPProvider(LLMProvider):
    """A provider behind one or more HTTP endpoints: one code path for all of them."""

    what: str  # how error messages name the server
    health_path: str  # a cheap GET that answers 200 when the server is up

    def __init__(
        self,
        base_urls: str | Sequence[str],
        timeout_s: float,
        *,
        api_key: str = "",
        policy: Policy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        self.http = ResilientClient(
            self.name,
            self.what,
            [self.endpoint_root(u) for u in urls],
            timeout_s,
            api_key=api_key,
            policy=policy,
            metrics=metrics,
        )

    @staticmethod
    def endpoint_root(url: str) -> str:
        """The URL the provider's paths are relative to."""
        return url.strip().rstrip("/")

    async def close(self) -> None:
        await self.http.aclose()

    async def ready(self) -> bool:
        return await self.http.ready(self.health_path)

    def endpoint_states(self) -> list[dict[str, Any]]:
        return self.http.states()


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
