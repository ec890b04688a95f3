"""`mongars bench ray`: the Ray Serve application against the embedded model.

In one run, on the same prompt and with the same llama.cpp threads per model:

1. tokens/s and time to first token: raw llama-cpp-python, the API on the embedded
   provider, and the API on the ``ray`` provider with 1 replica;
2. 8 concurrent streamed chats through Ray with 1, then 2 replicas (total tokens/s);
3. autoscaling: the time from a burst to a second replica serving;
4. a replica killed (-9) during a burst: requests that failed before their first token
   (target 0) and after it.

Ray runs as `mongars ray serve` on loopback. Targets (issue): Ray tokens/s >= 0.85x the
embedded provider; extra time to first token <= 50 ms p50; 0 failed requests that had
not streamed when a replica died.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mongars.bench.chat import _server_run
from mongars.bench.common import (
    PASSWORD,
    RawEngine,
    Run,
    create_users,
    embedded_env,
    free_port,
    model_and_threads,
    start_server,
    stop_server,
)
from mongars.settings import Settings

console = Console()


def streamed_chat(base: str, token: str, message: str, session: str) -> dict[str, Any]:
    """One SSE chat: time to first token, deltas, and how it ended."""
    seen: dict[str, Any] = {"ttft": None, "deltas": 0, "end": None, "detail": ""}
    start = time.perf_counter()
    try:
        with httpx.stream(
            "POST",
            f"{base}/api/v1/conversation/chat/stream",
            json={"message": message, "session_id": session},
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ) as r:
            seen["status"] = r.status_code
            if r.status_code != 200:  # an error before the stream: the API's JSON error
                seen["end"], seen["detail"] = f"http {r.status_code}", r.read().decode()[:300]
            event = ""
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "delta":
                        seen["deltas"] += 1
                        seen["ttft"] = seen["ttft"] or time.perf_counter() - start
                    elif event in ("done", "error", "cancelled"):
                        seen["end"], seen["detail"] = event, line[5:300]
    except httpx.HTTPError as exc:
        seen["end"], seen["detail"] = "http error", str(exc)
    seen["seconds"] = time.perf_counter() - start
    return seen


def burst(
    base: str, token: str, n: int, kill_pid: int | None = None, kill_after_s: float = 1.0
) -> list[dict[str, Any]]:
    """``n`` streamed chats at once; optionally a replica killed meanwhile."""
    results: list[dict[str, Any]] = []

    def one(i: int) -> None:
        results.append(
            {"i": i, **streamed_chat(base, token, f"Tell me a fact about the number {i}.", f"b{i}")}
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    if kill_pid is not None:
        time.sleep(kill_after_s)
        os.kill(kill_pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=600)
    return results


def replica_pids(url: str, tries: int = 20) -> set[int]:
    pids = set()
    for _ in range(tries):
        pids.add(int(httpx.get(f"{url}/v1/info", timeout=30).json()["pid"]))
    return pids


class RayServe:
    """`mongars ray serve` in a child process."""

    def __init__(self, env: dict[str, str], port: int, **ray: Any) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**env, "MONGARS_RAY__PORT": str(port)}
        env.update({f"MONGARS_RAY__{k.upper()}": str(v) for k, v in ray.items()})
        argv = ["-m", "mongars.cli", "ray", "serve"]
        try:
            self.proc = start_server(argv, env, port, ready_path="/v1/info", timeout_s=300)
        except RuntimeError:
            ray_stop()  # what the failed start left
            raise

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        ray_stop()


def ray_stop() -> None:
    """Whatever Ray processes the driver left (its raylet, workers)."""
    ray_bin = Path(sys.executable).parent / "ray"
    subprocess.run(  # noqa: S603 - Ray's own CLI
        [str(ray_bin), "stop", "--force"], capture_output=True, timeout=120
    )


def two_replicas_running(url: str, timeout_s: float = 120) -> set[int]:
    """Both replicas' pids (the kill must leave one serving: killing the only replica
    fails every request until Serve replaces it, a different case)."""
    deadline = time.monotonic() + timeout_s
    pids: set[int] = set()
    while time.monotonic() < deadline:
        pids = replica_pids(url)
        if len(pids) == 2:
            break
        time.sleep(1)
    return pids


def _login(base: str) -> str:
    r = httpx.post(f"{base}/token", data={"username": "bench", "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _throughput(base: str, token: str, n: int) -> float:
    start = time.perf_counter()
    results = burst(base, token, n)
    wall = time.perf_counter() - start
    return sum(r["deltas"] for r in results if r["end"] == "done") / wall


def run_bench_ray(runs: int, max_tokens: int, threads: int) -> None:
    base_settings, model_path, _ = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-ray-") as tmp:
        folder = Settings(_env_file=None, data_dir=Path(tmp), database_url="")  # type: ignore[call-arg]
        create_users(folder, ["bench"])
        env = {
            **embedded_env(tmp, model_path, max_tokens, threads),
            "MONGARS_SCHEDULER__ENABLED": "false",
            "MONGARS_RAY__REPLICA_THREADS": str(threads),
            "MONGARS_RAY__REPLICA_CPUS": "0.5",
        }
        ray_port, port_a, port_b = free_port(), free_port(), free_port()
        console.print("starting Ray Serve (1 replica) and two API servers...")
        ray = RayServe(env, ray_port, min_replicas=1, max_replicas=1)
        ray_env = {**env, "MONGARS_LLM__PROVIDER": "ray", "MONGARS_LLM__BASE_URLS": ray.url}
        cli = ["-m", "mongars.cli", "serve", "--port"]
        embedded = start_server([*cli, str(port_a)], env, port_a)
        served = start_server([*cli, str(port_b)], ray_env, port_b)
        figures: dict[str, Any] = {}
        try:
            base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
            token_a, token_b = _login(base_a), _login(base_b)
            engine = RawEngine(base_settings, model_path, threads)
            engine.run(max_tokens)
            _server_run(base_a, token_a, engine)
            _server_run(base_b, token_b, engine)
            raw: list[Run] = []
            emb: list[Run] = []
            via_ray: list[Run] = []
            for i in range(runs):
                console.print(f"single stream {i + 1}/{runs}")
                raw.append(engine.run(max_tokens)[0])
                emb.append(_server_run(base_a, token_a, engine)[0])
                via_ray.append(_server_run(base_b, token_b, engine)[0])
            figures["single"] = (raw, emb, via_ray)
            stop_server(embedded)
            del engine
            console.print("8 concurrent chats, 1 replica...")
            figures["tps_1"] = _throughput(base_b, token_b, 8)
        finally:
            stop_server(served)
            ray.stop()
        figures.update(_two_replicas(env, threads))
    _report(figures)


def _two_replicas(env: dict[str, str], threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    port, ray_port = free_port(), free_port()
    console.print("autoscaling: 1 replica, up to 2, a burst of 8...")
    ray = RayServe(
        env,
        ray_port,
        min_replicas=1,
        max_replicas=2,
        target_ongoing_requests=1,
        upscale_delay_s=0,
    )
    ray_env = {**env, "MONGARS_LLM__PROVIDER": "ray", "MONGARS_LLM__BASE_URLS": ray.url}
    served = start_server(["-m", "mongars.cli", "serve", "--port", str(port)], ray_env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        token = _login(base)
        first = replica_pids(ray.url, 5)
        started = time.perf_counter()
        worker = threading.Thread(target=burst, args=(base, token, 8))
        worker.start()
        out["scale_up_s"] = None
        while time.perf_counter() - started < 180:
            if replica_pids(ray.url, 4) - first:
                out["scale_up_s"] = time.perf_counter() - started
                break
            time.sleep(0.5)
        worker.join()
        console.print("8 concurrent chats, 2 replicas...")
        out["tps_2"] = _throughput(base, token, 8)
        console.print("a replica killed during a burst of 8 (the other one serving)...")
        pids = two_replicas_running(ray.url)
        out["killed"] = burst(base, token, 8, kill_pid=min(pids)) if len(pids) == 2 else None
    finally:
        stop_server(served)
        ray.stop()
    return out


def _report(f: dict[str, Any]) -> None:
    raw, emb, via_ray = f["single"]
    med = statistics.median
    table = Table(title="mongars bench ray: one stream (medians)")
    table.add_column("")
    table.add_column("raw llama-cpp-python", justify="right")
    table.add_column("API, embedded (baseline)", justify="right")
    table.add_column("API through Ray Serve", justify="right")
    table.add_column("Ray vs embedded", justify="right")
    tps = [med(r.tokens_per_s for r in runs) for runs in (raw, emb, via_ray)]
    ttft = [med(r.ttft_s for r in runs) * 1000 for runs in (raw, emb, via_ray)]
    table.add_row(
        "tokens/s", *(f"{x:.1f}" for x in tps), f"{tps[2] / tps[1]:.3f}x (target >= 0.85)"
    )
    table.add_row(
        "time to first token",
        *(f"{x:.1f} ms" for x in ttft),
        f"+{ttft[2] - ttft[1]:.1f} ms (target <= 50)",
    )
    console.print(table)
    console.print(
        f"8 concurrent streamed chats through Ray: {f['tps_1']:.1f} tokens/s with 1 replica, "
        f"{f['tps_2']:.1f} with 2 ({f['tps_2'] / f['tps_1']:.2f}x; 2 cores: little to gain)"
    )
    scale = f.get("scale_up_s")
    console.print(
        "burst to a second replica serving: "
        + (f"{scale:.1f} s" if scale is not None else "no new replica within 180 s")
    )
    killed = f["killed"]
    if killed is None:
        console.print("replica kill: skipped, the second replica was not running")
        return
    early = [r for r in killed if r["end"] != "done" and not r["deltas"]]
    late = [r for r in killed if r["end"] != "done" and r["deltas"]]
    console.print(
        f"replica killed during 8 chats: {len(early)} failed before their first token "
        f"(target 0), {len(late)} failed mid-answer (nothing stored), "
        f"{sum(r['end'] == 'done' for r in killed)} completed"
    )
