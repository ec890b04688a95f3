"""Pieces shared by the benchmarks: a real server process, the raw baseline, reports."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table

from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars.memory.embeddings import Embedder

PROMPT = "Tell me a long story about a dragon who learns to bake bread."
PASSWORD = "bench-password-123"  # noqa: S105 - throwaway accounts in a temp database


@dataclass
class Run:
    ttft_s: float
    tokens: int
    decode_s: float  # from the first token to the last

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s else 0.0


def bench_embedder() -> Embedder:
    """The embedder as the server runs it (ONNX query path, its export kept in the
    default data folder's models/), on one thread."""
    from mongars.memory.embeddings import Embedder

    return Embedder(threads=1, onnx_dir=Settings().data_dir / "models")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_users(settings: Settings, names: Sequence[str], admins: Sequence[str] = ()) -> None:
    """Migrate the bench database and create accounts (password PASSWORD)."""
    from mongars.auth.service import AuthService
    from mongars.db import migrate
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work

    migrate.upgrade(settings.resolved_database_url)

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        async with unit_of_work(create_session_factory(engine)) as session:
            auth = AuthService(session, settings.auth, "unused")
            for name in names:
                await auth.create_user(name, PASSWORD, is_admin=name in admins)
        await engine.dispose()

    asyncio.run(go())


def start_server(
    argv: list[str],
    env: dict[str, str],
    port: int,
    ready_path: str = "/ready",
    timeout_s: float = 120.0,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process and wait until ``ready_path`` answers 200; its output
    goes to ``log`` when given."""
    out: Any = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(  # noqa: S603 - our own modules
        [sys.executable, *argv], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    if log is not None:
        out.close()  # the child holds its own copy
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"the server did not become ready in {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def embedded_env(tmp: str, model_path: str, max_tokens: int, threads: int) -> dict[str, str]:
    return {
        **os.environ,
        "MONGARS_DATA_DIR": tmp,
        "MONGARS_DATABASE_URL": "",
        "MONGARS_LLM__PROVIDER": "llamacpp",
        "MONGARS_LLM__MODEL_PATH": model_path,
        "MONGARS_LLM__TEMPERATURE": "0",
        "MONGARS_LLM__MAX_TOKENS": str(max_tokens),
        "MONGARS_LLM__THREADS": str(threads),
        "MONGARS_LOG_LEVEL": "warning",
        # The pipeline's own overhead on the same prompt as the raw baseline:
        # recalled memories, cited documents and persona directives would change it.
        "MONGARS_MEMORY__ENABLED": "false",
        "MONGARS_PERSONA__ENABLED": "false",
        "MONGARS_RESEARCH__DOCUMENTS": "false",
        "MONGARS_RATE_LIMITS__ENABLED": "false",  # benches send more than a user would
    }


class RawEngine:
    """The baseline: llama-cpp-python used directly on the same model and prompt."""

    def __init__(self, settings: Settings, model_path: str, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=model_path,
            n_ctx=settings.llm.context_window,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.repeat_penalty = settings.llm.repeat_penalty
        # llama-cpp-python's own chat formatting (the GGUF's template through its Jinja
        # formatter): a baseline that shares no prompt code with monGARS.
        self.messages: Any = [
            {"role": "system", "content": settings.llm.system_prompt},
            {"role": "user", "content": PROMPT},
        ]

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False))

    def run(self, max_tokens: int) -> tuple[Run, str]:
        start = time.perf_counter()
        first = last = 0.0
        text = ""
        chunks: Any = self.llm.create_chat_completion(
            self.messages,
            max_tokens=max_tokens,
            temperature=0.0,
            repeat_penalty=self.repeat_penalty,
            stream=True,
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                last = time.perf_counter()
                first = first or last
                text += piece
        return Run(first - start, self.count(text), last - first), text


def compare_table(title: str, client: str, raw: list[Run], e2e: list[Run], same: bool) -> Table:
    med = statistics.median
    raw_tps, e2e_tps = med(r.tokens_per_s for r in raw), med(r.tokens_per_s for r in e2e)
    raw_ttft, e2e_ttft = med(r.ttft_s for r in raw), med(r.ttft_s for r in e2e)
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("raw llama-cpp-python", justify="right")
    table.add_column(client, justify="right")
    table.add_column("ratio / overhead", justify="right")
    table.add_row(
        "tokens/s", f"{raw_tps:.1f}", f"{e2e_tps:.1f}", f"{e2e_tps / raw_tps:.3f} (target >= 0.95)"
    )
    # Each run is ~1 s on a shared 2-core machine, so single runs swing by +-10 %;
    # the ratio of each served run to the raw run just before it cancels slow drift.
    ratios = sorted(
        e.tokens_per_s / r.tokens_per_s for r, e in zip(raw, e2e, strict=True) if r.tokens_per_s
    )
    if ratios:
        q1, q3 = percentile(ratios, 25), percentile(ratios, 75)
        table.add_row(
            "tokens/s, run by run",
            "",
            f"{len(ratios)} pairs",
            f"median {statistics.median(ratios):.3f} (quartiles {q1:.3f}-{q3:.3f})",
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
        "same text" if same else "texts differ",
    )
    return table


def model_and_threads(console: Console) -> tuple[Settings, str, int]:
    from mongars.cli import prepare_model_with_progress

    base = Settings()
    model_path = base.llm.model_path or prepare_model_with_progress(base)
    return base, model_path, base.llm.threads or (os.cpu_count() or 1)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


ClientRun = Callable[[str, str, RawEngine], tuple[Run, str]]  # (base url, token, engine)


def compare_with_raw(
    console: Console,
    title: str,
    client_label: str,
    client_run: ClientRun,
    runs: int,
    max_tokens: int,
) -> None:
    """Start a real `mongars serve` on the embedded model, then alternate raw
    llama-cpp-python runs and ``client_run`` on the same prompt; print medians."""
    base_settings, model_path, threads = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-") as tmp:
        create_users(Settings(data_dir=Path(tmp), database_url=""), ["bench"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        console.print(f"starting `mongars serve` (embedded model) on {base} ...")
        env = embedded_env(tmp, model_path, max_tokens, threads)
        server = start_server(["-m", "mongars.cli", "serve", "--port", str(port)], env, port)
        try:
            engine = RawEngine(base_settings, model_path, threads)
            r = httpx.post(f"{base}/token", data={"username": "bench", "password": PASSWORD})
            r.raise_for_status()
            token = str(r.json()["access_token"])
            engine.run(max_tokens)  # warm-up, both sides
            client_run(base, token, engine)
            raw: list[Run] = []
            served: list[Run] = []
            for i in range(runs):
                console.print(f"run {i + 1}/{runs}")
                raw_run, raw_text = engine.run(max_tokens)
                client, client_text = client_run(base, token, engine)
                raw.append(raw_run)
                served.append(client)
        finally:
            stop_server(server)
    same = raw_text.strip() == client_text.strip()
    console.print(compare_table(title, client_label, raw, served, same))
