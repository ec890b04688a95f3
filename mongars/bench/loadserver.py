"""A monGARS server whose model is a paced token source, for `mongars bench stream`.

Only for load measurements: it shows how the server itself (bus, sockets,
persistence) behaves under many concurrent streams, independent of model
speed. Each token is ``" t<n>@<unix time>"``, so a client can measure the
delay from production to reception. Usage: python -m mongars.bench.loadserver PORT

``python -m mongars.bench.loadserver PORT echo [INTERVAL_S]`` answers instead with
:func:`echo_answer` of the user's message, paced: a client knows the exact text that
must be stored (`mongars bench crash`). ``PORT paced INTERVAL_S`` sets the paced
source's interval between tokens (`mongars bench load`). Every mode also serves the
diagnostics of mongars.bench.loadstats.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncGenerator, Sequence

import uvicorn

from mongars.app import create_app
from mongars.bench import loadstats
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem
from mongars.settings import Settings

TOKEN_INTERVAL_S = 0.005  # 200 tokens/s per stream: faster than any CPU model here


class PacedProvider(LLMProvider):
    name = "paced"
    model_id = "paced-load-source"
    context_window = 8192

    def __init__(self, interval_s: float = TOKEN_INTERVAL_S) -> None:
        self.interval_s = interval_s

    async def ready(self) -> bool:
        return True

    async def message_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return [len(m.content.split()) + 2 for m in messages]

    async def prompt_overhead(self) -> int:
        return 1

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        for i in range(params.max_tokens):
            await asyncio.sleep(self.interval_s)
            yield Delta(f" t{i}@{time.time():.6f}", [-0.1])
        yield Finish(prompt_tokens=10, completion_tokens=params.max_tokens, finish_reason="length")


def echo_answer(message: str) -> str:
    """The answer :class:`EchoProvider` gives: a function of the message alone."""
    words = message.split()
    return " ".join(["Écho", f"({len(words)}):", *reversed(words), "✓"])


class EchoProvider(PacedProvider):
    """Answers :func:`echo_answer` of the last user message, a word every ``interval_s``."""

    name = "echo"
    model_id = "echo-load-source"

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        words = echo_answer(question).split(" ")[: params.max_tokens]
        for i, word in enumerate(words):
            await asyncio.sleep(self.interval_s)
            yield Delta(word if i == 0 else f" {word}", [-0.05])
        reason = "stop" if len(words) < params.max_tokens else "length"
        yield Finish(prompt_tokens=10, completion_tokens=len(words), finish_reason=reason)


def main() -> None:
    port = int(sys.argv[1])
    llm: LLMProvider = PacedProvider()
    if sys.argv[2:3] == ["echo"]:
        llm = EchoProvider(float(sys.argv[3]) if len(sys.argv) > 3 else TOKEN_INTERVAL_S)
    elif sys.argv[2:3] == ["paced"] and len(sys.argv) > 3:
        llm = PacedProvider(float(sys.argv[3]))
    settings = Settings()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:%(name)s: %(message)s")
    app = create_app(settings, llm=llm)
    loadstats.install(app)  # /_bench/stats and /_bench/gc (`mongars bench load`)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
