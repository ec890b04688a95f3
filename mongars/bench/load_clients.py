"""The clients of `mongars bench load`: SSE chatters, idle WebSockets and a sampler
of the server's resources. All asyncio, in the bench process, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

STREAM = "/api/v1/conversation/chat/stream"
CHAT_TIMEOUT_S = 60.0  # one answer: past this it is an error ("timeout")
WS_OPTIONS: dict[str, Any] = {
    "compression": None,
    "ping_interval": None,  # the server's own heartbeat (app-level ping) is answered
    "proxy": None,
    "open_timeout": 30,
    "max_queue": 64,
}


@dataclass
class Tally:
    ttft_ms: list[float] = field(default_factory=list)
    chats: int = 0
    deltas: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Sample:
    t: float
    rss_mib: float  # the server and its children
    cpu_pct: float  # the server and its children, 100 = one core
    fds: int
    client_cpu_pct: float  # this process: the load generator shares the machine
    postgres_cpu_pct: float
    stats: dict[str, Any]  # mongars.bench.loadstats, {} when it did not answer in time


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss_mib(proc: psutil.Process) -> float:
    total = 0
    for p in tree(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


class CpuMeter:
    """CPU % of a process tree between two reads (100 = one core); psutil needs the
    same Process object across reads, so they are kept by pid."""

    def __init__(self, root: psutil.Process | None) -> None:
        self.root = root
        self.known: dict[int, psutil.Process] = {}
        self.read()

    def read(self) -> float:
        total = 0.0
        for p in tree(self.root) if self.root else []:
            try:
                total += self.known.setdefault(p.pid, p).cpu_percent()
            except psutil.NoSuchProcess:
                self.known.pop(p.pid, None)
        return total


async def chat_once(http: httpx.AsyncClient, auth: dict[str, str], body: Any, tally: Tally) -> bool:
    """One streamed answer; its time to first delta, or an error by kind. True if done."""
    start = time.perf_counter()
    first = True
    try:
        async with asyncio.timeout(CHAT_TIMEOUT_S):
            async with http.stream("POST", STREAM, json=body, headers=auth) as r:
                if r.status_code != 200:
                    await r.aread()
                    detail = r.json().get("code", "") if r.content.startswith(b"{") else ""
                    tally.errors[f"HTTP {r.status_code} {detail}".strip()] += 1
                    return False
                event = ""
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif not line.startswith("data: "):
                        continue
                    elif event == "delta":
                        if first:
                            tally.ttft_ms.append((time.perf_counter() - start) * 1000)
                            first = False
                        tally.deltas += 1
                    elif event == "done":
                        tally.chats += 1
                        return True
                    else:
                        code = json.loads(line[6:]).get("code", "")
                        tally.errors[f"SSE {event} {code}".strip()] += 1
                        return False
                tally.errors["stream ended before done"] += 1
    except TimeoutError:
        tally.errors[f"no answer in {CHAT_TIMEOUT_S:.0f} s"] += 1
    except httpx.HTTPError as exc:
        tally.errors[f"{type(exc).__name__}"] += 1
    except OSError as exc:
        tally.errors[f"OSError {exc.strerror}"] += 1
    return False


async def chatter(
    http: httpx.AsyncClient, token: str, thread: str, deadline: float, tally: Tally
) -> None:
    """Chat in one thread until ``deadline``: a new message as soon as an answer ends."""
    auth = {"Authorization": f"Bearer {token}"}
    n = 0
    while time.monotonic() < deadline:
        n += 1
        body = {"message": f"load message {n}: tell me something", "session_id": thread}
        if not await chat_once(http, auth, body, tally):
            await asyncio.sleep(0.5)  # an error: do not hammer


class IdleSockets:
    """WebSockets held open without chatting; they answer the server's heartbeat as a
    browser tab does. A socket that fails to open or that the server closes is an
    error (``errors``, by kind)."""

    def __init__(self, base: str) -> None:
        self.url = base.replace("http://", "ws://") + "/ws/chat?t="
        self.sockets: list[ClientConnection] = []
        self.keepers: list[asyncio.Task[None]] = []
        self.errors: Counter[str] = Counter()
        self.closing = False

    async def open(self, http: httpx.AsyncClient, token: str, count: int) -> None:
        gate = asyncio.Semaphore(20)
        auth = {"Authorization": f"Bearer {token}"}

        async def one() -> None:
            async with gate:
                try:
                    r = await http.post("/api/v1/auth/ws/ticket", headers=auth)
                    r.raise_for_status()
                    ws = await connect(self.url + r.json()["ticket"], **WS_OPTIONS)
                except (httpx.HTTPError, OSError, TimeoutError, InvalidHandshake) as exc:
                    self.errors[f"WS open: {type(exc).__name__}"] += 1
                    return
                self.sockets.append(ws)
                self.keepers.append(asyncio.create_task(self._keep(ws)))

        await asyncio.gather(*(one() for _ in range(count)))

    async def _keep(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if '"type": "ping"' in str(raw) or '"type":"ping"' in str(raw):
                    await ws.send('{"type": "pong"}')
        except ConnectionClosed:
            pass
        if not self.closing:
            reason = f" {ws.close_reason}" if ws.close_reason else ""
            self.errors[f"WS closed by the server ({ws.close_code}{reason})"] += 1

    def alive(self) -> int:
        return sum(1 for ws in self.sockets if ws.close_code is None)

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.keepers, return_exceptions=True)


async def sampler(
    http: httpx.AsyncClient,
    server: psutil.Process,
    postgres: psutil.Process | None,
    samples: list[Sample],
    stop: asyncio.Event,
    period_s: float = 1.0,
) -> None:
    """Every ``period_s``: the server's RSS, CPU and open files, this process's CPU,
    PostgreSQL's CPU, and the server's own figures (loop lag, pool, generations)."""
    me, server_cpu, pg_cpu = CpuMeter(psutil.Process()), CpuMeter(server), CpuMeter(postgres)
    start = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period_s)
        try:
            r = await http.get("/_bench/stats", timeout=period_s * 5)
            stats = dict(r.json())
        except (httpx.HTTPError, ValueError):
            stats = {}
        procs = tree(server)
        try:
            fds = sum(p.num_fds() for p in procs)
        except psutil.NoSuchProcess:
            fds = 0
        samples.append(
            Sample(
                time.monotonic() - start,
                tree_rss_mib(server),
                server_cpu.read(),
                fds,
                me.read(),
                pg_cpu.read(),
                stats,
            )
        )
