"""Ollama provider: streaming ``/api/chat`` (NDJSON), ``num_ctx`` from settings."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from mongars.errors import ProviderError
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem
from mongars.llm.http import (
    estimate_tokens,
    make_client,
    parse_json,
    provider_errors,
    raise_for_status,
)


class OllamaProvider(LLMProvider):
    name = "ollama"

    def __init__(self, base_url: str, model: str, context_window: int, timeout_s: float) -> None:
        if not model:
            raise ValueError("MONGARS_LLM__MODEL must name the Ollama model")
        self.model_id = model
        self.context_window = context_window
        self._client = make_client(base_url, timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        try:
            response = await self._client.get("/api/tags", timeout=5.0)
        except Exception:
            return False
        return response.is_success

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        # Ollama exposes no tokenizer endpoint: estimate from above (documented).
        return [estimate_tokens(m.content) + 4 for m in messages]

    async def prompt_overhead(self) -> int:
        return 8

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        options: dict[str, Any] = {
            "num_ctx": self.context_window,
            "num_predict": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "repeat_penalty": params.repeat_penalty,
        }
        if params.seed is not None:
            options["seed"] = params.seed
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "logprobs": True,
            "options": options,
        }
        if params.json_schema is not None:
            body["format"] = params.json_schema
        async with (
            provider_errors("Ollama"),
            self._client.stream("POST", "/api/chat", json=body) as response,
        ):
            await raise_for_status(response, "Ollama")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                data = parse_json(line, "Ollama")
                if "error" in data:
                    raise ProviderError(f"Ollama: {data['error']}")
                text = (data.get("message") or {}).get("content") or ""
                logprobs = [float(lp["logprob"]) for lp in data.get("logprobs") or []]
                if text:
                    yield Delta(text, logprobs)
                if data.get("done"):
                    yield Finish(
                        prompt_tokens=int(data.get("prompt_eval_count") or 0),
                        completion_tokens=int(data.get("eval_count") or 0),
                        finish_reason="length" if data.get("done_reason") == "length" else "stop",
                    )
                    return
        raise ProviderError("Ollama closed the stream before it was done")
