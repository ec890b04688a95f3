"""OpenAI-compatible provider (vLLM, llama.cpp server, ...): ``/v1/chat/completions`` SSE."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from mongars.errors import DomainError, ProviderError, ProviderTimeout, ProviderUnavailable
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.llm.http import HTTPProvider, estimate_tokens, parse_json
from mongars.llm.resilience import Policy

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics

WHAT = "OpenAI-compatible server"


class OpenAICompatProvider(HTTPProvider):
    name = "openai"
    what = WHAT
    health_path = "/v1/models"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        context_window: int,
        timeout_s: float,
        api_key: str = "",
        *,
        policy: Policy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.model_id = model
        self.context_window = context_window
        self._tokenize_supported: bool | None = None
        super().__init__(base_url, timeout_s, api_key=api_key, policy=policy, metrics=metrics)

    @staticmethod
    def endpoint_root(url: str) -> str:
        return url.strip().rstrip("/").removesuffix("/v1")  # paths below name /v1 themselves

    async def start(self) -> None:
        if not self.model_id:  # use the server's first model
            response = await self.http.request("GET", "/v1/models")
            models = parse_json(response.text, WHAT).get("data") or []
            first = models[0] if isinstance(models, list) and models else None
            if not isinstance(first, dict) or not first.get("id"):
                raise ProviderError("the OpenAI-compatible server lists no models")
            self.model_id = str(first["id"])

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [await self._count(m.content) + 4 for m in messages]

    async def prompt_overhead(self) -> int:
        return 8

    async def _count(self, text: str) -> int:
        """Count with the server's tokenizer (vLLM and llama.cpp expose /tokenize)."""
        if self._tokenize_supported is not False:
            body = {"model": self.model_id, "prompt": text, "content": text}
            try:
                response = await self.http.request("POST", "/tokenize", body, retries=0)
                data = response.json()
                count = int(data.get("count") or len(data.get("tokens") or []))
                self._tokenize_supported = True
                return count
            except (ProviderUnavailable, ProviderTimeout):
                return estimate_tokens(text)  # down for now: ask again next time
            except (DomainError, ValueError, AttributeError, TypeError):
                self._tokenize_supported = False  # no tokenizer there: stop asking
        return estimate_tokens(text)

    def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "logprobs": True,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": params.json_schema, "strict": True},
            }
        return self.http.stream("POST", "/v1/chat/completions", body, self._read)

    async def _read(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
        finish_reason = "stop"
        usage: dict[str, Any] | None = None
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            data = parse_json(payload, WHAT)
            if "error" in data:
                raise ProviderError(f"{WHAT}: {data['error']}")
            usage = data.get("usage") or usage
            for choice in data.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                logprobs = [
                    float(t["logprob"])
                    for t in ((choice.get("logprobs") or {}).get("content") or [])
                ]
                if text:
                    yield Delta(text, logprobs)
                finish_reason = choice.get("finish_reason") or finish_reason
        else:
            raise ProviderError(f"{WHAT} closed the stream without [DONE]")
        usage = usage or {}
        yield Finish(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if finish_reason == "length" else "stop",
        )
