"""`mongars bench mesh`: what the peer mesh costs and gives (docs/peers.md#benchmark).

1. Signing and verifying one peer message (RFC 9421, Ed25519, Content-Digest), in
   process, against building the same request unsigned: microseconds p50/p95.
2. The same over HTTP on two real nodes (`mongars serve`, loopback): a signed telemetry
   request (verified, nonce stored) against the same body sent with a bearer token to
   the admin ingest route; the difference is what signing adds per message.
3. Delegated embedding: a long document uploaded to node D alone, then to D with a
   same-owner peer W taking embedding batches (runs alternate): chunks/s.
4. Adapter replication: D pulls an approved adapter file from W (signed manifest,
   resumable transfer, sha256 checked, installed as a candidate): MB/s, next to copying
   and hashing the same file locally.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mongars.bench.common import PASSWORD, create_users, free_port, percentile, stop_server
from mongars.settings import Settings

ADMIN = "bench-admin"


@dataclass
class Node:
    name: str
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    client: httpx.Client
    node_id: str = ""


def _us(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f}"


def _crypto_part(console: Console, n: int) -> dict[str, float]:
    from mongars.peers.identity import NodeIdentity
    from mongars.peers.signing import sign_headers, verify

    tmp = Path(tempfile.mkdtemp(prefix="mongars-bench-mesh-"))
    try:
        a = NodeIdentity.load_or_create(tmp / "a")
        b = NodeIdentity.load_or_create(tmp / "b")
        url = "http://127.0.0.1:8000/api/v1/peer/mesh/telemetry"
        body = json.dumps({"scheduler_id": a.node_id, "queue_depth": 3, "models": ["m"] * 8})
        plain, signed, checked = [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            raw = body.encode()
            headers = {"content-type": "application/json", "content-length": str(len(raw))}
            t1 = time.perf_counter()
            headers |= sign_headers(a, "POST", url, raw, b.node_id)
            t2 = time.perf_counter()
            verify("POST", url, headers.items(), raw, a.signing_public, b.node_id)
            t3 = time.perf_counter()
            plain.append((t1 - t0) * 1e6)
            signed.append((t2 - t1) * 1e6)
            checked.append((t3 - t2) * 1e6)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(title=f"1. one message, in process ({n} messages): µs p50 / p95")
    table.add_column("unsigned request")
    table.add_column("sign")
    table.add_column("verify")
    table.add_column("sign + verify")
    both = [s + c for s, c in zip(signed, checked, strict=True)]
    table.add_row(_us(plain), _us(signed), _us(checked), _us(both))
    console.print(table)
    return {"sign_verify_p95_us": percentile(both, 95)}


def _start(base: Path, name: str, extra: dict[str, str]) -> Node:
    data_dir = base / name
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env |= {
        "MONGARS_DATA_DIR": str(data_dir),
        "MONGARS_PUBLIC_URL": url,
        "MONGARS_PEERS__ENABLED": "true",
        "MONGARS_PEERS__ALLOW_HTTP": "true",  # loopback: a private link
        "MONGARS_PEERS__TELEMETRY_INTERVAL_S": "1",
        "MONGARS_MEMORY__ENABLED": "true",
        "MONGARS_RESEARCH__DOCUMENTS": "true",
        "MONGARS_SCHEDULER__ENABLED": "false",
        "MONGARS_EVOLUTION__ENABLED": "false",
        "MONGARS_LLM__THREADS": "1",
        "MONGARS_LOG_LEVEL": "warning",
        "MONGARS_RATE_LIMITS__ENABLED": "false",  # benches send more than a user would
        **extra,
    }
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    create_users(settings, [ADMIN], admins=[ADMIN])
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [str(Path(sys.executable).parent / "mongars"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"node {name} did not start")
        time.sleep(0.5)
    client = httpx.Client(base_url=url, timeout=600)
    token = client.post("/token", data={"username": ADMIN, "password": PASSWORD}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    node = Node(name, url, data_dir, proc, client)
    node.node_id = client.get("/api/v1/peer/node").json()["node_id"]
    return node


def _pair(inviter: Node, joiner: Node) -> None:
    invite = inviter.client.post("/api/v1/peer/invites", json={"same_owner": True}).json()
    r = joiner.client.post(
        "/api/v1/peer/join", json={"invite": invite["invite"], "same_owner": True}
    )
    r.raise_for_status()
    inviter.client.post(
        f"/api/v1/peer/requests/{joiner.node_id}/approve", json={}
    ).raise_for_status()


def _http_part(console: Console, d: Node, w: Node, n: int) -> dict[str, float]:
    """Signed telemetry to W (as D, with D's keys) vs the admin ingest route on W."""
    from mongars.peers.identity import NodeIdentity
    from mongars.peers.signing import sign_headers

    me = NodeIdentity.load_or_create(d.data_dir)
    body = json.dumps({"scheduler_id": d.node_id, "queue_depth": 1}).encode()
    url = f"{w.url}/api/v1/peer/mesh/telemetry"
    signed: list[float] = []
    bearer: list[float] = []
    with httpx.Client(timeout=30) as http:
        for i in range(n):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for side in order:
                t0 = time.perf_counter()
                if side == 0:
                    headers = sign_headers(me, "POST", url, body, w.node_id)
                    headers["content-type"] = "application/json"
                    r = http.post(url, content=body, headers=headers)
                else:
                    r = w.client.post(
                        "/api/v1/peer/telemetry",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code >= 300:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                (signed if side == 0 else bearer).append(elapsed)
    table = Table(title=f"2. one message over HTTP on loopback ({n} each, alternating): ms")
    table.add_column("route")
    table.add_column("p50")
    table.add_column("p95")
    table.add_row(
        "signed peer request (verify, nonce stored)",
        f"{percentile(signed, 50):.2f}",
        f"{percentile(signed, 95):.2f}",
    )
    table.add_row(
        "same body, bearer token (admin ingest)",
        f"{percentile(bearer, 50):.2f}",
        f"{percentile(bearer, 95):.2f}",
    )
    added = percentile(signed, 95) - percentile(bearer, 95)
    table.add_row("added by signing (p95 difference)", "", f"{added:+.2f}")
    console.print(table)
    return {"http_added_p95_ms": added}


def _document(paragraphs: int, tag: str) -> bytes:
    return "\n\n".join(
        f"Section {n} ({tag}). The keeper of lighthouse {n % 37} logged storm {n} with wind "
        f"from the {['north', 'south', 'east', 'west'][n % 4]} and {n % 9} ships sheltered."
        for n in range(paragraphs)
    ).encode()


def _embed_part(console: Console, d: Node, w: Node, runs: int, paragraphs: int) -> dict[str, float]:
    alone: list[float] = []
    helped: list[float] = []
    chunks = 0
    for i in range(runs * 2):
        with_peer = i % 2 == 1
        if with_peer:
            if d.client.get(f"/api/v1/peers/{w.node_id}").json()["state"] != "paired":
                _pair(d, w)
            _wait_healthy(d, w)
        else:
            peer = d.client.get(f"/api/v1/peers/{w.node_id}")
            if peer.status_code == 200 and peer.json()["state"] == "paired":
                d.client.delete(f"/api/v1/peers/{w.node_id}")
        data = _document(paragraphs, uuid.uuid4().hex[:6])
        t0 = time.perf_counter()
        r = d.client.post(
            "/api/v1/documents",
            files={"file": (f"doc{i}.txt", data, "text/plain")},
            data={"collection": "bench"},
        )
        elapsed = time.perf_counter() - t0
        r.raise_for_status()
        chunks = int(r.json()["document"].get("chunks", 0)) or chunks
        (helped if with_peer else alone).append(elapsed)
    sent = d.client.get(f"/api/v1/peers/{w.node_id}").json().get("work_sent", {})
    table = Table(
        title=f"3. a document of {chunks} chunks, embedded ({runs} runs each, alternating)"
    )
    table.add_column("")
    table.add_column("seconds (median)")
    table.add_column("chunks/s")
    a, h = sorted(alone)[len(alone) // 2], sorted(helped)[len(helped) // 2]
    table.add_row("node D alone", f"{a:.2f}", f"{chunks / a:.1f}")
    table.add_row("D with peer W taking batches", f"{h:.2f}", f"{chunks / h:.1f}")
    table.add_row("speed-up", f"{a / h:.2f}x", f"(batches sent to W: {sent.get('embed', 0)})")
    console.print(table)
    return {"embed_speedup": a / h}


def _wait_healthy(d: Node, w: Node, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        peer = d.client.get(f"/api/v1/peers/{w.node_id}").json()
        if peer.get("healthy") and peer.get("banned_until") is None:
            return
        time.sleep(0.5)
    raise RuntimeError("the peer did not become healthy")


def write_completed_run(
    data_dir: Path, content: bytes, metrics: dict[str, Any] | None = None
) -> str:
    """A completed sft run whose adapter file is ``content``, written into the SQLite
    database and run folder of a node that is not this process (its API registers it).
    Also used by tests/peers."""
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work
    from mongars.training.models import TrainingRun
    from mongars.training.repository import TrainingRepository

    run_id = uuid.uuid4().hex[:16]
    folder = data_dir.resolve() / "training" / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(content)

    async def insert() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{(data_dir / 'mongars.db').resolve()}")
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                await TrainingRepository(session).add_run(
                    TrainingRun(
                        id=run_id,
                        dataset_id="ds-gone",
                        dataset_sha256="0" * 64,
                        objective="sft",
                        status="completed",
                        params={},
                        metrics=dict(metrics or {}),
                        adapter_sha256=hashlib.sha256(content).hexdigest(),
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(insert())
    return run_id


def _adapter_on(node: Node, size: int) -> str:
    """An approved adapter version on ``node``: random bytes of ``size``."""
    run_id = write_completed_run(node.data_dir, os.urandom(size))
    version = node.client.post("/api/v1/adapters/register", json={"run_id": run_id})
    version.raise_for_status()
    node.client.post(f"/api/v1/adapters/{version.json()['id']}/approve", json={}).raise_for_status()
    return str(version.json()["sha256"])


def _replication_part(console: Console, d: Node, w: Node, mib: int) -> dict[str, float]:
    size = mib * 1024 * 1024
    sha = _adapter_on(w, size)
    source = w.data_dir / "adapters" / sha / "adapter.gguf"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        shutil.copyfile(source, Path(tmp) / "copy")
        hashlib.sha256((Path(tmp) / "copy").read_bytes()).hexdigest()
        local = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = d.client.post(f"/api/v1/peers/{w.node_id}/adapters/pull", json={"sha256": sha})
    pulled = time.perf_counter() - t0
    r.raise_for_status()
    table = Table(title=f"4. adapter replication, one {mib} MiB file")
    table.add_column("")
    table.add_column("seconds")
    table.add_column("MB/s")
    table.add_row("local copy + sha256 (baseline)", f"{local:.2f}", f"{size / 1e6 / local:.0f}")
    table.add_row(
        "pulled from peer (signed, verified, installed)",
        f"{pulled:.2f}",
        f"{size / 1e6 / pulled:.0f}",
    )
    console.print(table)
    return {"replication_mb_s": size / 1e6 / pulled}


def run_bench_mesh(messages: int, http_messages: int, runs: int, paragraphs: int, mib: int) -> None:
    console = Console()
    _crypto_part(console, messages)
    base = Path(tempfile.mkdtemp(prefix="mongars-bench-mesh-"))
    nodes: list[Node] = []
    try:
        console.print("starting two nodes (mongars serve on loopback)...")
        d = _start(
            base,
            "d",
            {
                "MONGARS_PEERS__DELEGATE": '["embed"]',
                "MONGARS_PEERS__SPOT_CHECK_SHARE": "0",
                "MONGARS_RESEARCH__CHUNK_TOKENS": "64",
                "MONGARS_RESEARCH__CHUNK_OVERLAP_TOKENS": "8",
            },
        )
        nodes.append(d)
        w = _start(base, "w", {"MONGARS_PEERS__ACCEPT": '["embed"]'})
        nodes.append(w)
        _pair(d, w)
        _wait_healthy(d, w)
        _http_part(console, d, w, http_messages)
        _replication_part(console, d, w, mib)
        _embed_part(console, d, w, runs, paragraphs)
        console.print(
            "[dim]Both nodes share this machine's cores: the embedding speed-up is what a "
            "second machine would give only where the CPUs are not shared.[/dim]"
        )
    finally:
        for node in nodes:
            node.client.close()
            stop_server(node.proc)
        shutil.rmtree(base, ignore_errors=True)
