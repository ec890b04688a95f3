"""The provider interface every LLM backend implements.

A provider streams :class:`Delta` items (text plus the log-probability of each
token in it, when the backend exposes them) and ends with one :class:`Finish`
carrying the token counts from the model's own tokenizer.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_tokens: int
    temperature: float
    top_p: float = 1.0
    seed: int | None = None
    repeat_penalty: float = 1.0  # > 1 discourages repeating recent tokens (llama.cpp, Ollama)
    # Constrain the output to JSON matching this schema (llama.cpp grammar, Ollama
    # `format`, OpenAI `response_format`): the answer then always parses.
    json_schema: dict[str, Any] | None = None
    # The sha256 of the LoRA adapter to answer with (docs/adapters.md); None: the base
    # model. Only providers with ``loads_adapters`` take one.
    adapter: str | None = None


@dataclass(slots=True)
class Delta:
    text: str
    logprobs: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Finish:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "cancelled"


StreamItem = Delta | Finish


class LLMProvider(ABC):
    """One model behind one backend. Created in the lifespan, closed there."""

    name: str
    model_id: str
    context_window: int
    # How prompts reach the model, for the admin page (e.g. "chat template", "transcript").
    prompt_format: str = "the server's chat format"
    prompt_format_note: str = ""  # a warning about it, when there is one
    # Whether it can answer with this server's LoRA adapters (llama.cpp here or on Ray).
    loads_adapters: bool = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load or connect; raise ProviderUnavailable when impossible."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or the HTTP client."""

    @abstractmethod
    async def ready(self) -> bool:
        """Whether the model can answer now."""

    @abstractmethod
    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Tokens each message costs in this provider's prompt format."""

    @abstractmethod
    async def prompt_overhead(self) -> int:
        """Tokens the prompt costs besides its messages (BOS, the reply cue)."""

    def endpoint_states(self) -> list[dict[str, Any]]:
        """Each endpoint and its circuit breaker (HTTP providers), for the console."""
        return []

    async def prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens of the whole prompt as the model will see it. Providers that render
        a chat template count the rendered prompt; others add up the estimates."""
        return sum(await self.message_tokens(messages)) + await self.prompt_overhead()

    @abstractmethod
    def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        """Generate a reply token by token. Closing the iterator stops generation."""


def mean_probability(logprobs: Sequence[float]) -> float | None:
    """Confidence: the mean probability the model gave the tokens it produced."""
    if not logprobs:
        return None
    value = sum(math.exp(lp) for lp in logprobs) / len(logprobs)
    return min(1.0, max(0.0, value))
