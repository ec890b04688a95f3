"""The ``ray`` provider: the monGARS Serve application (mongars/serving/) over HTTP.

Replicas run the same llama.cpp code as the embedded provider, so prompts are rendered
by the model's own chat template, token counts are exact (``/v1/tokens``) and every
token comes with its log-probability. Several endpoints (Serve proxies on several
nodes) are rotated behind breakers like any HTTP provider; 409/503 answers that say
the deployment is scaling count as scaling events, not failures."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from mongars.errors import DomainError, ProviderError
from mongars.llm.base import ChatMessage, Finish, GenerationParams, StreamItem
from mongars.llm.http import HTTPProvider, parse_json
from mongars.llm.resilience import Policy
from mongars.serving import protocol

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics

WHAT = "Ray Serve application"


class RayProvider(HTTPProvider):
    name = "ray"
    loads_adapters = True  # replicas load them from the shared data dir (docs/adapters.md)
    what = WHAT
    health_path = "/v1/info"

    def __init__(
        self,
        base_urls: str | Sequence[str],
        context_window: int,
        timeout_s: float,
        *,
        policy: Policy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.model_id = "ray"
        self.context_window = context_window
        self._overhead = 0
        self.replicas: int | None = None
        self._metrics = metrics
        self._counted: tuple[tuple[ChatMessage, ...], dict[str, Any]] | None = None
        super().__init__(base_urls, timeout_s, policy=policy, metrics=metrics)

    async def _info(self) -> dict[str, Any]:
        info = parse_json((await self.http.request("GET", "/v1/info")).text, WHAT)
        if isinstance(info.get("replicas"), int):
            self.replicas = int(info["replicas"])
            if self._metrics is not None:
                self._metrics.llm_replicas.set(self.replicas, {"provider": self.name})
        return info

    async def ready(self) -> bool:
        """Health through ``/v1/info``, which also refreshes the replica count."""
        try:
            await self._info()
        except DomainError:
            return False
        return True

    def endpoint_states(self) -> list[dict[str, Any]]:
        return [{**s, "replicas": self.replicas} for s in super().endpoint_states()]

    async def start(self) -> None:
        info = await self._info()
        self.model_id = str(info.get("model_id") or "ray")
        # The replica's window, unless ours is smaller (a budget of our own).
        self.context_window = min(
            self.context_window, int(info.get("context_window") or 0) or self.context_window
        )
        self.prompt_format = str(info.get("prompt_format") or self.prompt_format)
        self.prompt_format_note = str(info.get("prompt_format_note") or "")
        self._overhead = int(info.get("prompt_overhead") or 0)

    async def _tokens(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        """One request counts both ways; the budget asks for both of the same prompt."""
        key = tuple(messages)
        if self._counted is not None and self._counted[0] == key:
            return self._counted[1]
        body = {"messages": protocol.messages_json(list(messages))}
        data = parse_json((await self.http.request("POST", "/v1/tokens", body)).text, WHAT)
        self._counted = (key, data)
        return data

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [int(n) for n in (await self._tokens(messages))["message_tokens"]]

    async def prompt_overhead(self) -> int:
        return self._overhead

    async def prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return int((await self._tokens(messages))["prompt_tokens"])

    def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        body = {
            "messages": protocol.messages_json(list(messages)),
            "params": protocol.params_json(params),
        }
        return self.http.stream("POST", "/v1/stream", body, self._read)

    async def _read(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            try:
                item = protocol.item_from(parse_json(line, WHAT))
            except protocol.ProtocolError as exc:
                raise ProviderError(f"{WHAT}: {exc}") from exc
            yield item
            if isinstance(item, Finish):
                return
        raise ProviderError(f"{WHAT} closed the stream before the answer ended")
