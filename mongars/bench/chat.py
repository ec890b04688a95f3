"""`mongars bench chat`: raw llama-cpp-python vs a client of POST /chat/stream.

Both sides generate greedily from the same rendered prompt with the same
model file and thread count; runs alternate so drift hits both equally. The
server runs as a real `mongars serve` process on 127.0.0.1, measured by an
HTTP client exactly as a user's would be.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console

from mongars.bench.common import (
    PASSWORD,
    PROMPT,
    RawEngine,
    Run,
    compare_table,
    create_users,
    embedded_env,
    free_port,
    model_and_threads,
    start_server,
    stop_server,
)
from mongars.settings import Settings


def _server_run(http: httpx.Client, engine: RawEngine) -> tuple[Run, str]:
    """A lean SSE reader, so the client's own CPU use disturbs the server little."""
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
    console = Console()
    base, model_path, threads = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-") as tmp:
        create_users(Settings(data_dir=Path(tmp), database_url=""), ["bench"])
        port = free_port()
        console.print(f"starting `mongars serve` on 127.0.0.1:{port} ...")
        env = embedded_env(tmp, model_path, max_tokens, threads)
        server = start_server(["-m", "mongars.cli", "serve", "--port", str(port)], env, port)
        try:
            engine = RawEngine(base, model_path, threads)
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
            token = http.post("/token", data={"username": "bench", "password": PASSWORD})
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            engine.run(max_tokens)  # warm-up, both sides
            _server_run(http, engine)
            raw: list[Run] = []
            e2e: list[Run] = []
            for i in range(runs):
                console.print(f"run {i + 1}/{runs}")
                r, raw_text = engine.run(max_tokens)
                s, server_text = _server_run(http, engine)
                raw.append(r)
                e2e.append(s)
            http.close()
        finally:
            stop_server(server)
    same = raw_text.strip() == server_text.strip()
    console.print(
        compare_table("mongars bench chat (medians)", "POST /chat/stream client", raw, e2e, same)
    )
