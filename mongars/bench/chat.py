"""`mongars bench chat`: raw llama-cpp-python vs a client of POST /chat/stream.

Both sides generate greedily from the same rendered prompt with the same
model file and thread count; runs alternate so drift hits both equally. The
server runs as a real `mongars serve` process on 127.0.0.1, measured by an
HTTP client exactly as a user's would be.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from mongars.client import MonGARSClient
from mongars.llm.base import ChatMessage
from mongars.llm.llamacpp import STOP_SEQUENCES, render_prompt
from mongars.settings import Settings

PROMPT = "Tell me a long story about a dragon who learns to bake bread."
PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway account in a temp database


@dataclass
class Run:
    ttft_s: float
    tokens: int
    decode_s: float  # from the first token to the last

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s else 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raw_run(llm: object, prompt: str, max_tokens: int) -> tuple[Run, str]:
    start = time.perf_counter()
    first = last = 0.0
    text = ""
    for chunk in llm.create_completion(  # type: ignore[attr-defined]
        prompt, max_tokens=max_tokens, temperature=0.0, stop=STOP_SEQUENCES, stream=True
    ):
        piece = chunk["choices"][0]["text"]
        if piece:
            last = time.perf_counter()
            first = first or last
            text += piece
    tokens = len(llm.tokenize(text.encode(), add_bos=False))  # type: ignore[attr-defined]
    return Run(first - start, tokens, last - first), text


def _server_run(http: httpx.Client, llm: object, max_tokens: int) -> tuple[Run, str]:
    """A lean SSE reader, so the client's own CPU use disturbs the server little."""
    start = time.perf_counter()
    first = last = 0.0
    text = ""
    buffer = b""
    body = {"message": PROMPT}
    with http.stream("POST", "/api/v1/conversation/chat/stream", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
        for chunk in response.iter_raw():
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                kind, _, data = frame.partition(b"\ndata: ")
                if kind == b"event: delta":
                    last = time.perf_counter()
                    first = first or last
                    text += json.loads(data)["text"]
                elif kind == b"event: error":
                    raise RuntimeError(data.decode())
    tokens = len(llm.tokenize(text.encode(), add_bos=False))  # type: ignore[attr-defined]
    return Run(first - start, tokens, last - first), text


def _create_user(settings: Settings) -> None:
    from mongars.auth.service import AuthService
    from mongars.db import migrate
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work

    migrate.upgrade(settings.resolved_database_url)

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        async with unit_of_work(create_session_factory(engine)) as session:
            await AuthService(session, settings.auth, "unused").create_user(
                "bench", PASSWORD, is_admin=False
            )
        await engine.dispose()

    asyncio.run(go())


def _start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "mongars.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready in 120 s")


def run_bench_chat(runs: int = 5, max_tokens: int = 128) -> None:
    from llama_cpp import Llama

    from mongars.cli import prepare_model_with_progress

    console = Console()
    base = Settings()
    model_path = base.llm.model_path or prepare_model_with_progress(base)
    threads = base.llm.threads or (os.cpu_count() or 1)
    ctx = base.llm.context_window
    with tempfile.TemporaryDirectory(prefix="mongars-bench-") as tmp:
        env = {
            **os.environ,
            "MONGARS_DATA_DIR": tmp,
            "MONGARS_DATABASE_URL": "",
            "MONGARS_LLM__PROVIDER": "llamacpp",
            "MONGARS_LLM__MODEL_PATH": str(model_path),
            "MONGARS_LLM__TEMPERATURE": "0",
            "MONGARS_LLM__MAX_TOKENS": str(max_tokens),
            "MONGARS_LLM__THREADS": str(threads),
            "MONGARS_LOG_LEVEL": "warning",
        }
        settings = Settings(data_dir=Path(tmp), database_url="")
        _create_user(settings)
        port = _free_port()
        console.print(f"starting `mongars serve` on 127.0.0.1:{port} ...")
        server = _start_server(env, port)
        try:
            llm = Llama(
                model_path=str(model_path),
                n_ctx=ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
            prompt = render_prompt(
                [ChatMessage("system", base.llm.system_prompt), ChatMessage("user", PROMPT)]
            )
            client = MonGARSClient(f"http://127.0.0.1:{port}")
            client.login("bench", PASSWORD)
            http = client.http
            _raw_run(llm, prompt, max_tokens)  # warm-up, both sides
            _server_run(http, llm, max_tokens)
            raw: list[Run] = []
            e2e: list[Run] = []
            for i in range(runs):
                console.print(f"run {i + 1}/{runs}")
                r, raw_text = _raw_run(llm, prompt, max_tokens)
                s, server_text = _server_run(http, llm, max_tokens)
                raw.append(r)
                e2e.append(s)
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    _report(console, raw, e2e, raw_text.strip() == server_text.strip())


def _report(console: Console, raw: list[Run], e2e: list[Run], same_text: bool) -> None:
    med = statistics.median
    raw_tps, e2e_tps = med(r.tokens_per_s for r in raw), med(r.tokens_per_s for r in e2e)
    raw_ttft, e2e_ttft = med(r.ttft_s for r in raw), med(r.ttft_s for r in e2e)
    table = Table(title="mongars bench chat (medians)")
    table.add_column("measure")
    table.add_column("raw llama-cpp-python", justify="right")
    table.add_column("POST /chat/stream client", justify="right")
    table.add_column("ratio / overhead", justify="right")
    table.add_row(
        "tokens/s", f"{raw_tps:.1f}", f"{e2e_tps:.1f}", f"{e2e_tps / raw_tps:.3f} (target >= 0.95)"
    )
    table.add_row(
        "time to first token",
        f"{raw_ttft * 1000:.1f} ms",
        f"{e2e_ttft * 1000:.1f} ms",
        f"+{(e2e_ttft - raw_ttft) * 1000:.1f} ms (target <= 30 ms)",
    )
    table.add_row(
        "tokens per answer",
        f"{med(r.tokens for r in raw):.0f}",
        f"{med(r.tokens for r in e2e):.0f}",
        "same text" if same_text else "texts differ",
    )
    console.print(table)
