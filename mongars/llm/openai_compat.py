"""OpenAI-compatible provider (vLLM, llama.cpp server, ...): ``/v1/chat/completions`` SSE."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import httpx

from mongars.errors import ProviderError
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem
from mongars.llm.http import (
    estimate_tokens,
    make_client,
    parse_json,
    provider_errors,
    raise_for_status,
)


class OpenAICompatProvider(LLMProvider):
    name = "openai"

    def __init__(
        self, base_url: str, model: str, context_window: int, timeout_s: float, api_key: str = ""
    ) -> None:
        root = base_url.rstrip("/")
        root = root.removesuffix("/v1")
        self.model_id = model
        self.context_window = context_window
        self._client = make_client(root, timeout_s, api_key)
        self._tokenize_supported: bool | None = None

    async def start(self) -> None:
        if not self.model_id:  # use the server's first model
            async with provider_errors("OpenAI-compatible server"):
                response = await self._client.get("/v1/models")
                await raise_for_status(response, "OpenAI-compatible server")
            models = parse_json(response.text, "OpenAI-compatible server").get("data") or []
            first = models[0] if isinstance(models, list) and models else None
            if not isinstance(first, dict) or not first.get("id"):
                raise ProviderError("the OpenAI-compatible server lists no models")
            self.model_id = str(first["id"])

    async def close(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        try:
            response = await self._client.get("/v1/models", timeout=5.0)
        except Exception:
            return False
        return response.is_success

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [await self._count(m.content) + 4 for m in messages]

    async def prompt_overhead(self) -> int:
        return 8

    async def _count(self, text: str) -> int:
        """Count with the server's tokenizer (vLLM and llama.cpp expose /tokenize)."""
        if self._tokenize_supported is not False:
            try:
                response = await self._client.post(
                    "/tokenize", json={"model": self.model_id, "prompt": text, "content": text}
                )
                if response.is_success:
                    data = response.json()
                    self._tokenize_supported = True
                    return int(data.get("count") or len(data.get("tokens") or []))
            except (httpx.HTTPError, ValueError):
                pass
            self._tokenize_supported = False
        return estimate_tokens(text)

    async def stream(
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
        finish_reason = "stop"
        usage: dict[str, Any] | None = None
        what = "OpenAI-compatible server"
        async with (
            provider_errors(what),
            self._client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            await raise_for_status(response, what)
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                data = parse_json(payload, what)
                if "error" in data:
                    raise ProviderError(f"{what}: {data['error']}")
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
                raise ProviderError(f"{what} closed the stream without [DONE]")
        usage = usage or {}
        yield Finish(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if finish_reason == "length" else "stop",
        )
