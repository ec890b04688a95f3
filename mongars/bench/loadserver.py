"""A monGARS server whose model is a paced token source, for `mongars bench stream`.

Only for load measurements: it shows how the server itself (bus, sockets,
persistence) behaves under many concurrent streams, independent of model
speed. Each token is ``" t<n>@<unix time>"``, so a client can measure the
delay from production to reception. Usage: python -m mongars.bench.loadserver PORT
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncGenerator, Sequence

import uvicorn

from mongars.app import create_app
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider, StreamItem
from mongars.settings import Settings

TOKEN_INTERVAL_S = 0.005  # 200 tokens/s per stream: faster than any CPU model here


class PacedProvider(LLMProvider):
    name = "paced"
    model_id = "paced-load-source"
    context_window = 8192

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
            await asyncio.sleep(TOKEN_INTERVAL_S)
            yield Delta(f" t{i}@{time.time():.6f}", [-0.1])
        yield Finish(prompt_tokens=10, completion_tokens=params.max_tokens, finish_reason="length")


def main() -> None:
    port = int(sys.argv[1])
    settings = Settings()
    uvicorn.run(
        create_app(settings, llm=PacedProvider()), host="127.0.0.1", port=port, log_level="warning"
    )


if __name__ == "__main__":
    main()
