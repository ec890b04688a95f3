"""Test doubles: a scripted LLM provider for pipeline tests (every feature also has
real-model tests) and a hand-moved clock."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Sequence

from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem


class ScriptedLLM(LLMProvider):
    """Answers with scripted text, one word per delta; can fail on demand.

    Token counting is one token per whitespace-separated word plus 2 per
    message, which makes context-window tests exact.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[str] = ("Hello there. How can I help?",),
        context_window: int = 4096,
        delay: float = 0.0,
    ) -> None:
        self.model_id = "scripted-model"
        self.context_window = context_window
        self.replies = list(replies)
        self.delay = delay
        self.fail_with: BaseException | None = None
        self.fail_after: int = 0  # deltas sent before failing
        self.calls: list[list[ChatMessage]] = []
        self.is_ready = True
        self.closed_early = False

    async def ready(self) -> bool:
        return self.is_ready

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [len(m.content.split()) + 2 for m in messages]

    async def prompt_overhead(self) -> int:
        return 1

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        self.calls.append(list(messages))
        reply = self.replies[(len(self.calls) - 1) % len(self.replies)]
        words = reply.split(" ") if reply else []
        sent = 0
        try:
            for i, word in enumerate(words[: params.max_tokens]):
                if self.fail_with is not None and sent >= self.fail_after:
                    raise self.fail_with
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield Delta(word if i == 0 else " " + word, [math.log(0.5)])
                sent += 1
            if self.fail_with is not None:
                raise self.fail_with
            yield Finish(
                prompt_tokens=sum(await self.message_tokens(messages)),
                completion_tokens=sent,
                finish_reason="length" if len(words) > params.max_tokens else "stop",
            )
        except (GeneratorExit, asyncio.CancelledError):  # closed or cancelled mid-answer
            self.closed_early = True
            raise


class ManualClock:
    """A clock the test moves by hand (``clock.now += 2``)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now
