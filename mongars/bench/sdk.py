"""`mongars bench sdk`: the Python SDK's streaming against raw httpx on the same chats.

Honest by construction: one `mongars serve` (embedded model, greedy, memory, persona
and documents off), one login, the same prompt and token budget for every side,
one warm-up each, then rounds in which every side streams once, the order rotating
each round so drift and caching favour no side. Medians are reported:

- raw httpx: ``httpx.Client.stream`` and a minimal hand-written SSE split (the floor);
- raw httpx-sse: ``httpx_sse.connect_sse`` on the same kind of client (what the SDK uses);
- the SDK, blocking (``Client.chat.stream``), against raw httpx;
- raw async httpx-sse (``aconnect_sse`` on ``httpx.AsyncClient``) and the asyncio SDK
  (``AsyncClient.chat.stream``), compared with each other: asyncio costs CPU per chunk
  whoever reads, so the async SDK is held to the async baseline.

Figures per side: deltas/s from the first delta to the last (each delta is one
model token, the same for all sides since the text is the same), time to the first
delta, and the client's own CPU time per delta (the overhead that throughput hides
when the model is the bottleneck). A second part repeats this against the paced
load server (`mongars.bench.loadserver`, 200 tokens/s, no model) where client costs
weigh more. The TypeScript SDK is measured too when sdk/typescript has its bench.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import aconnect_sse, connect_sse
from rich.console import Console
from rich.table import Table

from mongars.bench.common import (
    PASSWORD,
    PROMPT,
    create_users,
    embedded_env,
    free_port,
    model_and_threads,
    start_server,
    stop_server,
)
from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars_sdk import AsyncClient, Client

STREAM = "/api/v1/conversation/chat/stream"
REPO = Path(__file__).resolve().parents[2]
TS_BENCH = REPO / "sdk" / "typescript" / "bench" / "stream.mjs"


@dataclass
class Sample:
    ttft_s: float
    deltas: int
    decode_s: float  # first delta to last
    cpu_s: float  # this process's CPU time for the whole request
    text: str

    @property
    def rate(self) -> float:
        return (self.deltas - 1) / self.decode_s if self.deltas > 1 and self.decode_s else 0.0


@dataclass
class Side:
    label: str
    run: Callable[[], Sample]
    baseline: str = "raw httpx"  # the raw client with the same kind of I/O (blocking / asyncio)
    samples: list[Sample] = field(default_factory=list)


class _Clock:
    """Marks of one request: start, first and last delta, CPU time."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.cpu = time.process_time()
        self.first = self.last = 0.0
        self.parts: list[str] = []

    def delta(self, text: str) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last
        self.parts.append(text)

    def sample(self) -> Sample:
        if not self.parts:
            raise RuntimeError("no delta was streamed")
        cpu = time.process_time() - self.cpu
        return Sample(
            self.first - self.start,
            len(self.parts),
            self.last - self.first,
            cpu,
            "".join(self.parts),
        )


def _raw_httpx(http: httpx.Client, body: dict[str, Any]) -> Sample:
    clock = _Clock()
    buffer = b""
    with http.stream("POST", STREAM, json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
        for chunk in response.iter_raw():
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                _, _, rest = frame.partition(b"\nevent: ")
                kind, _, data = rest.partition(b"\ndata: ")
                if kind == b"delta":
                    clock.delta(json.loads(data)["text"])
                elif kind == b"error":
                    raise RuntimeError(data.decode())
    return clock.sample()


def _raw_httpx_sse(http: httpx.Client, body: dict[str, Any]) -> Sample:
    clock = _Clock()
    with connect_sse(http, "POST", STREAM, json=body) as source:
        for sse in source.iter_sse():
            if sse.event == "delta":
                clock.delta(json.loads(sse.data)["text"])
            elif sse.event == "error":
                raise RuntimeError(sse.data)
    return clock.sample()


def _raw_httpx_async(
    loop: asyncio.AbstractEventLoop, http: httpx.AsyncClient, body: dict[str, Any]
) -> Sample:
    async def go() -> Sample:
        clock = _Clock()
        async with aconnect_sse(http, "POST", STREAM, json=body) as source:
            async for sse in source.aiter_sse():
                if sse.event == "delta":
                    clock.delta(json.loads(sse.data)["text"])
                elif sse.event == "error":
                    raise RuntimeError(sse.data)
        return clock.sample()

    return loop.run_until_complete(go())


def _sdk_sync(client: Client, body: dict[str, Any]) -> Sample:
    from mongars_sdk import DeltaEvent

    clock = _Clock()
    for event in client.chat.stream(body["message"]):
        if isinstance(event, DeltaEvent):
            clock.delta(event.text)
    return clock.sample()


def _sdk_async(
    loop: asyncio.AbstractEventLoop, client: AsyncClient, body: dict[str, Any]
) -> Sample:
    from mongars_sdk import DeltaEvent

    async def go() -> Sample:
        clock = _Clock()
        async for event in client.chat.stream(body["message"]):
            if isinstance(event, DeltaEvent):
                clock.delta(event.text)
        return clock.sample()

    return loop.run_until_complete(go())


def _login(base: str, username: str) -> str:
    r = httpx.post(f"{base}/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _measure(console: Console, base: str, token: str, message: str, runs: int) -> list[Side]:
    from mongars_sdk import AsyncClient, Client

    headers = {"Authorization": f"Bearer {token}"}
    body = {"message": message}
    loop = asyncio.new_event_loop()
    # One kept-alive connection per side, created up front: no side pays a connect.
    with (
        httpx.Client(base_url=base, timeout=300, headers=headers) as raw,
        httpx.Client(base_url=base, timeout=300, headers=headers) as raw_sse,
        Client(base, token=token, timeout=300) as sdk,
    ):
        async_sdk = AsyncClient(base, token=token, timeout=300)
        raw_async = httpx.AsyncClient(base_url=base, timeout=300, headers=headers)
        sides = [
            Side("raw httpx", lambda: _raw_httpx(raw, body)),
            Side("raw httpx-sse", lambda: _raw_httpx_sse(raw_sse, body)),
            Side("SDK Client", lambda: _sdk_sync(sdk, body)),
            Side("raw httpx-sse async", lambda: _raw_httpx_async(loop, raw_async, body)),
            Side(
                "SDK AsyncClient",
                lambda: _sdk_async(loop, async_sdk, body),
                baseline="raw httpx-sse async",
            ),
        ]
        try:
            for side in sides:  # warm-up: connections, imports, the server's caches
                side.run()
            for i in range(runs):
                console.print(f"  round {i + 1}/{runs}")
                for k in range(len(sides)):
                    side = sides[(i + k) % len(sides)]  # rotate who goes first
                    side.samples.append(side.run())
        finally:
            loop.run_until_complete(async_sdk.aclose())
            loop.run_until_complete(raw_async.aclose())
            loop.close()
    return sides


def _table(title: str, sides: list[Side], same_text: bool = True) -> Table:
    """Medians per side; ``same_text``: the sides should have streamed identical text."""
    med = statistics.median
    by_label = {side.label: side for side in sides}
    base = sides[0]
    table = Table(title=title)
    columns = ("client", "deltas/s", "vs raw (>= 0.95)", "first delta (vs raw)", "CPU/delta")
    for name in columns:
        table.add_column(name, justify="left" if name == "client" else "right")
    for side in sides:
        raw = by_label[side.baseline]
        base_rate = med(s.rate for s in raw.samples)
        base_ttft = med(s.ttft_s for s in raw.samples)
        rate = med(s.rate for s in side.samples)
        ttft = med(s.ttft_s for s in side.samples)
        cpu = med(s.cpu_s / s.deltas for s in side.samples)
        ratio = f"{rate / base_rate:.3f}"
        extra = "" if side is raw else f" ({(ttft - base_ttft) * 1000:+.1f})"
        table.add_row(
            side.label, f"{rate:.1f}", ratio, f"{ttft * 1000:.1f} ms{extra}", f"{cpu * 1e6:.0f} µs"
        )
    texts = {s.text for side in sides for s in side.samples}
    deltas = med(s.deltas for side in sides for s in side.samples)
    caption = (
        f"median of {len(base.samples)} rounds, {deltas:.0f} deltas per answer; "
        "ratios against raw httpx, the async SDK's against raw async httpx-sse"
    )
    if same_text:
        same = len(texts) == 1
        caption += "; every side streamed the same text" if same else "; texts DIFFER"
    table.caption = caption
    return table


def run_typescript(console: Console, base: str, token: str, runs: int) -> dict[str, Any] | None:
    """The TypeScript SDK's bench (sdk/typescript/bench/stream.mjs), when it is there.

    It prints one JSON line ``{"sdk": {...}, "raw": {...}}``; returned as parsed."""
    node = shutil.which("node")
    if (
        node is None
        or not TS_BENCH.is_file()
        or not (TS_BENCH.parents[1] / "node_modules").is_dir()
    ):
        console.print(f"TypeScript SDK: skipped (needs node and {TS_BENCH.relative_to(REPO)})")
        return None
    args = [node, str(TS_BENCH), "--base-url", base, "--token", token, "--runs", str(runs)]
    done = subprocess.run(  # noqa: S603 - our own script
        args, capture_output=True, text=True, timeout=600, cwd=TS_BENCH.parents[1], check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        console.print(
            f"[red]TypeScript bench failed[/red] ({done.returncode}): {done.stderr[-500:]}"
        )
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    table = Table(title="TypeScript SDK vs raw fetch (medians, as the script reports them)")
    for name in ("measure", "raw", "SDK", "SDK / raw"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    sdk, raw = result.get("sdk", {}), result.get("raw", {})
    for key in sorted(set(sdk) | set(raw)):
        a, b = raw.get(key), sdk.get(key)
        numeric = isinstance(a, int | float) and isinstance(b, int | float) and a
        ratio = f"{b / a:.3f}" if numeric else ""  # type: ignore[operator]
        table.add_row(key, str(a), str(b), ratio)
    console.print(table)
    return result


def _embedded_part(console: Console, runs: int, max_tokens: int, typescript: bool) -> None:
    _, model_path, threads = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-sdk-") as tmp:
        create_users(Settings(data_dir=Path(tmp), database_url=""), ["bench"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        console.print(f"[1] `mongars serve` (embedded model, {max_tokens} tokens) on {base} ...")
        env = embedded_env(tmp, model_path, max_tokens, threads)
        server = start_server(["-m", "mongars.cli", "serve", "--port", str(port)], env, port)
        try:
            token = _login(base, "bench")
            sides = _measure(console, base, token, PROMPT, runs)
            console.print(_table("mongars bench sdk: embedded model, SSE", sides))
            if typescript:
                run_typescript(console, base, token, runs)
        finally:
            stop_server(server)


def _paced_part(console: Console, runs: int, tokens: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mongars-bench-sdk-") as tmp:
        create_users(Settings(data_dir=Path(tmp), database_url=""), ["bench"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        console.print(f"[2] paced load server (200 tokens/s, {tokens} tokens) on {base} ...")
        server = start_server(
            ["-m", "mongars.bench.loadserver", str(port)], embedded_env(tmp, "", tokens, 1), port
        )
        try:
            sides = _measure(console, base, _login(base, "bench"), f"go {tokens}", runs)
            title = "mongars bench sdk: paced source (no model), SSE"
            console.print(_table(title, sides, same_text=False))  # tokens carry timestamps
        finally:
            stop_server(server)


def run_bench_sdk(
    runs: int = 5, max_tokens: int = 128, paced_tokens: int = 400, typescript: bool = True
) -> None:
    console = Console()
    try:
        import mongars_sdk  # noqa: F401
    except ImportError:
        console.print("[red]mongars_sdk is not installed:[/red] pip install -e sdk/python")
        raise SystemExit(1) from None
    _embedded_part(console, runs, max_tokens, typescript)
    if paced_tokens:
        _paced_part(console, runs, paced_tokens)
