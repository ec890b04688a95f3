"""Ollama provider: streaming ``/api/chat`` (NDJSON), ``num_ctx`` from settings."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from mongars.errors import ProviderError
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.llm.http import HTTPProvider, estimate_tokens, parse_json
from mongars.llm.resilience import Policy

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics


class OllamaProvider(HTTPProvider):
    name = "ollama"
    what = "Ollama"
    health_path = "/api/tags"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        context_window: int,
        timeout_s: float,
        *,
        policy: Policy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not model:
            raise ValueError("MONGARS_LLM__MODEL must name the Ollama model")
        self.model_id = model
        self.context_window = context_window
        super().__init__(base_url, timeout_s, policy=policy, metrics=metrics)

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        # Ollama exposes no tokenizer endpoint: estimate from above (documented).
        return [estimate_tokens(m.content) + 4 for m in messages]

    async def prompt_overhead(self) -> int:
        return 8

    def stream(
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
        return self.http.stream("POST", "/api/chat", body, self._read)

    async def _read(self, response: httpx.Response) -> AsyncIterator[StreamItem]:
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
