"""`mongars bench chat`: raw llama-cpp-python vs a client of POST /chat/stream.

Both sides generate greedily from the same rendered prompt with the same
model file and thread count; runs alternate so drift hits both equally. The
server runs as a real `mongars serve` process on 127.0.0.1, measured by an
HTTP client exactly as a user's would be.
"""

from __future__ import annotations

import functools
import json
import time

import httpx
from rich.console import Console

from mongars.bench.common import (
    PROMPT,
    RawEngine,
    Run,
    compare_with_raw,
)


@functools.cache
def _client(base: str, token: str) -> httpx.Client:
    """One kept-alive connection per server, as a real client would hold."""
    return httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"})


def _server_run(base: str, token: str, engine: RawEngine) -> tuple[Run, str]:
    """A lean SSE reader, so the client's own CPU use disturbs the server little."""
    http = _client(base, token)
    start = time.perf_counter()
    first = last = 0.0
    text = ""
    buffer = b""
    with http.stream("POST", "/api/v1/conversation/chat/stream", json={"message": PROMPT}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read()[:200]!r}")
        for chunk in r.iter_raw():
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                _, _, rest = frame.partition(b"\nevent: ")
                kind, _, data = rest.partition(b"\ndata: ")
                if kind == b"delta":
                    last = time.perf_counter()
                    first = first or last
                    text += json.loads(data)["text"]
                elif kind == b"error":
                    raise RuntimeError(data.decode())
    return Run(first - start, engine.count(text), last - first), text


def run_bench_chat(runs: int = 5, max_tokens: int = 128) -> None:
    compare_with_raw(
        Console(),
        "mongars bench chat (medians)",
        "POST /chat/stream client",
        _server_run,
        runs,
        max_tokens,
    )
