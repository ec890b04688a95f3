"""`mongars bench stream`: WebSocket streaming against its baselines.

1. and 2. The embedded model through a real `mongars serve` and a WebSocket
   client, against raw llama-cpp-python on the same prompt: tokens/s and
   time to first token.
3. Load: 500 idle sockets plus 20 users streaming at once from a fast paced
   provider (in a `mongars.bench.loadserver` process); the latency of each
   delta from the moment the provider produced it to the moment a client read
   it, and the server's memory before and after.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect

from mongars.bench.common import (
    PASSWORD,
    PROMPT,
    RawEngine,
    Run,
    compare_with_raw,
    create_users,
    embedded_env,
    free_port,
    percentile,
    rss_mib,
    start_server,
    stop_server,
)
from mongars.settings import Settings


def _login(base: str, username: str) -> str:
    r = httpx.post(f"{base}/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["access_token"])


async def _ticket(http: httpx.AsyncClient, token: str) -> str:
    r = await http.post("/api/v1/auth/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return str(r.json()["ticket"])


async def _ws_run(base: str, token: str, engine: RawEngine) -> tuple[Run, str]:
    async with httpx.AsyncClient(base_url=base) as http:
        ticket = await _ticket(http, token)
    url = base.replace("http://", "ws://") + f"/ws/chat?t={ticket}"
    async with connect(url, compression=None, ping_interval=None, proxy=None) as ws:
        for _ in range(2):  # ws.connected, history.snapshot
            await ws.recv()
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "chat.send", "message": PROMPT}))
        first = last = 0.0
        text = ""
        while True:
            raw = await ws.recv()
            if '"chat.delta"' in raw:
                last = time.perf_counter()
                first = first or last
                text += json.loads(raw)["text"]
            elif '"chat.completed"' in raw or '"chat.error"' in raw:
                break
    return Run(first - start, engine.count(text), last - first), text


def _model_part(console: Console, runs: int, max_tokens: int) -> None:
    compare_with_raw(
        console,
        "mongars bench stream: WebSocket vs raw (medians)",
        "WebSocket client",
        lambda base, token, engine: asyncio.run(_ws_run(base, token, engine)),
        runs,
        max_tokens,
    )


@dataclass
class LoadResult:
    latencies_ms: list[float]
    deltas: int
    elapsed_s: float
    alive: int
    rss_mib: tuple[float, float, float]  # at start, with idle sockets, after the streams


async def _load(base: str, pid: int, idle: int, chatters: int, tokens: int) -> LoadResult:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        idle_token = (
            await http.post("/token", data={"username": "idle", "password": PASSWORD})
        ).json()["access_token"]
        tickets = [await _ticket(http, idle_token) for _ in range(idle)]
        chat_tokens = []
        for i in range(chatters):
            r = await http.post("/token", data={"username": f"chat{i}", "password": PASSWORD})
            chat_tokens.append(r.json()["access_token"])
        chat_tickets = [await _ticket(http, t) for t in chat_tokens]
    ws_base = base.replace("http://", "ws://") + "/ws/chat?t="
    opts = {"compression": None, "ping_interval": None, "proxy": None}
    before = rss_mib(pid)
    idle_socks = [await connect(ws_base + t, **opts) for t in tickets]  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    with_idle = rss_mib(pid)
    latencies: list[float] = []

    async def chatter(ticket: str) -> int:
        received = 0
        async with connect(ws_base + ticket, **opts) as ws:  # type: ignore[arg-type]
            for _ in range(2):
                await ws.recv()
            await ws.send(json.dumps({"type": "chat.send", "message": f"go {tokens}"}))
            while True:
                raw = await ws.recv()
                now = time.time()
                if '"chat.delta"' in raw:
                    produced = float(json.loads(raw)["text"].split("@")[1])
                    latencies.append(now - produced)
                    received += 1
                elif '"chat.completed"' in raw or '"chat.error"' in raw:
                    return received

    started = time.perf_counter()
    counts = await asyncio.gather(*(chatter(t) for t in chat_tickets))
    elapsed = time.perf_counter() - started
    alive = sum(1 for s in idle_socks if s.state.name == "OPEN")
    after = rss_mib(pid)
    for sock in idle_socks:
        await sock.close()
    return LoadResult(
        [x * 1000 for x in latencies], sum(counts), elapsed, alive, (before, with_idle, after)
    )


def _load_part(console: Console, idle: int, chatters: int, tokens: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mongars-load-") as tmp:
        names = ["idle", *(f"chat{i}" for i in range(chatters))]
        create_users(Settings(data_dir=Path(tmp), database_url=""), names)
        port = free_port()
        console.print(f"[3] starting the load server (paced provider) on 127.0.0.1:{port} ...")
        env = {
            **embedded_env(tmp, "", tokens, 1),
            "MONGARS_REALTIME__CHAT_RATE_LIMIT": "1000/minute",
            "MONGARS_AUTH__LOGIN_LIMIT_PER_ADDRESS": "1000/minute",
        }
        server = start_server(["-m", "mongars.bench.loadserver", str(port)], env, port)
        try:
            result = asyncio.run(
                _load(f"http://127.0.0.1:{port}", server.pid, idle, chatters, tokens)
            )
        finally:
            stop_server(server)
    lat = result.latencies_ms
    table = Table(title=f"mongars bench stream: {idle} idle sockets + {chatters} streaming chats")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("deltas received", f"{result.deltas} in {result.elapsed_s:.1f} s")
    table.add_row("delta latency p50", f"{statistics.median(lat):.1f} ms")
    table.add_row("delta latency p95", f"{percentile(lat, 95):.1f} ms")
    table.add_row("idle sockets still open", f"{result.alive}/{idle}")
    before, with_idle, after = result.rss_mib
    table.add_row(
        "server RSS: start / +idle sockets / after streams",
        f"{before:.0f} / {with_idle:.0f} / {after:.0f} MiB",
    )
    console.print(table)


def run_bench_stream(
    runs: int, max_tokens: int, idle: int, chatters: int, tokens: int, skip_model: bool = False
) -> None:
    console = Console()
    if not skip_model:
        _model_part(console, runs, max_tokens)
    _load_part(console, idle, chatters, tokens)
