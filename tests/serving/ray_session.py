"""A real Ray Serve session, run by test_ray.py inside `unshare --net` (only loopback):

``python -m tests.serving.ray_session REPORT.json MODEL.gguf [ADAPTER.gguf]``

1. `mongars ray serve` with 2 replicas of the embedded model;
2. the replicas' token counts and greedy answers against the embedded provider's, on
   the same messages (the same code: they must agree);
3. with ADAPTER: imported into the data dir, then ``adapter_manifest.json`` written:
   how long until both replicas report it on /v1/info, and greedy answers without an
   ``adapter`` key vs with ``adapter: null`` (the base);
4. `mongars serve` with ``provider=ray``: a chat, a streamed chat;
5. a burst of streamed chats while one replica is killed (-9): which requests failed
   and whether they had streamed; with ADAPTER, whether the replica Serve started in
   its place serves the manifest's adapter, then the manifest rolled back to the base
   model (current None): how long until both replicas follow, and the answers;
6. the API process's /metrics.

Everything measured goes to REPORT.json; the test asserts on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from mongars.adapters import store
from mongars.bench.adapters import wait_replicas
from mongars.bench.ray_serve import burst, ray_stop, two_replicas_running
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams
from mongars.llm.llamacpp import LlamaCppProvider
from mongars.llm.ray import RayProvider

RAY_PORT = 8701
API_PORT = 8702
PASSWORD = "ray-session-password"
MESSAGES = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]
GREEDY = GenerationParams(max_tokens=24, temperature=0.0, seed=0)
# The tiny test adapter was taught made-up towns' door colours (tests/training).
TRAINED_QUESTION = [{"role": "user", "content": "What colour are the doors in Quenbrook?"}]
FOLLOW_TIMEOUT_S = 30.0  # the test asserts <= 5 s; this only bounds the wait
# Short answers. Greedy text depends a little on a replica's prompt cache: a replica
# that evaluated the same prompt just before reuses that prefix and re-evaluates only
# the last token, and llama.cpp's one-token and batched paths differ by up to ~0.5 in
# the logits. The tiny adapter leaves a near-tie on the first word ("In" 32.36 vs "The"
# 32.32), so its answer is "In Quenbrook, ..." on a fresh cache (right after a swap)
# and "The doors in Quenbrook are a deep," on a reused one; the base model's stays
# "The doors in Quenbrook are a mix of" for these 10 tokens.
ANSWER_TOKENS = 10


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.time() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout} s")
        time.sleep(0.5)


async def collect(provider: Any) -> tuple[str, list[float], Finish]:
    text, logprobs, finish = "", [], None
    async for item in provider.stream(MESSAGES, GREEDY):
        if isinstance(item, Delta):
            text += item.text
            logprobs += item.logprobs
        else:
            finish = item
    assert finish is not None
    return text, logprobs, finish


async def compare(model: str, work: Path) -> dict[str, Any]:
    embedded = LlamaCppProvider(model, work, 4096, threads=1)
    await embedded.start()
    ray = RayProvider(f"http://127.0.0.1:{RAY_PORT}", 4096, 120.0)
    await ray.start()
    try:
        e_text, e_lp, e_fin = await collect(embedded)
        r_text, r_lp, r_fin = await collect(ray)
        return {
            "model_id": ray.model_id,
            "prompt_format": ray.prompt_format,
            "tokens_embedded": await embedded.prompt_tokens(MESSAGES),
            "tokens_ray": await ray.prompt_tokens(MESSAGES),
            "message_tokens_equal": await embedded.message_tokens(MESSAGES)
            == await ray.message_tokens(MESSAGES),
            "overhead_equal": await embedded.prompt_overhead() == await ray.prompt_overhead(),
            "text_embedded": e_text,
            "text_ray": r_text,
            "logprob_max_diff": max(
                (abs(a - b) for a, b in zip(e_lp, r_lp, strict=False)), default=0.0
            ),
            "completion_tokens": [e_fin.completion_tokens, r_fin.completion_tokens],
        }
    finally:
        await embedded.close()
        await ray.close()


def answer(url: str, **adapter: str | None) -> str:
    """A greedy answer from ``/v1/stream`` to the trained question; ``adapter`` given
    (even None) puts the key in the params, absent leaves it out (the manifest's)."""
    params = {"max_tokens": ANSWER_TOKENS, "temperature": 0.0, "seed": 0, **adapter}
    r = httpx.post(
        f"{url}/v1/stream", json={"messages": TRAINED_QUESTION, "params": params}, timeout=120
    )
    r.raise_for_status()
    text = ""
    for line in r.text.splitlines():
        item = json.loads(line) if line.strip() else {}
        if "error" in item:
            raise RuntimeError(item["error"])
        text += item.get("delta", "")
    return text


def answers(url: str, n: int, **adapter: str | None) -> list[str]:
    """``n`` answers (Serve spreads them over the replicas): all equal when every
    replica answers with the same model."""
    return sorted({answer(url, **adapter) for _ in range(n)})


def activate(work: Path, adapter: Path, url: str, pids: set[int]) -> dict[str, Any]:
    """The adapter imported and made current in the manifest; both replicas follow."""
    data_dir = work / "data"
    sha, _ = store.import_file(data_dir, adapter)
    out: dict[str, Any] = {"sha": sha, "base": answers(url, 4, adapter=None)}
    current = {"version": 1, "sha256": sha, "path": str(store.adapter_path(data_dir, sha))}
    written = time.perf_counter()
    store.write_manifest(data_dir, current, [current])
    out["follow"] = wait_replicas(url, sha, pids, FOLLOW_TIMEOUT_S, written)
    out["default"] = answers(url, 6)  # no `adapter` key: the manifest's
    out["explicit_base"] = answers(url, 4, adapter=None)
    out["explicit_adapter"] = answers(url, 4, adapter=sha)
    return out


def rollback(work: Path, url: str, sha: str, pids: set[int], new: set[int]) -> dict[str, Any]:
    """The replica Serve started after the kill (``new``) serves the manifest's adapter
    (the other one last answered the API's requests, which name the base model); then
    the manifest's current is None and both replicas return to the base model."""
    out: dict[str, Any] = {"new_pids": sorted(new)}
    since = time.perf_counter()
    out["new_replica"] = wait_replicas(url, sha, new, FOLLOW_TIMEOUT_S, since)
    out["default_before"] = answers(url, 6)
    data_dir = work / "data"
    previous = {"version": 1, "sha256": sha, "path": str(store.adapter_path(data_dir, sha))}
    written = time.perf_counter()
    store.write_manifest(data_dir, None, [previous])
    out["follow"] = wait_replicas(url, None, pids, FOLLOW_TIMEOUT_S, written)
    out["default"] = answers(url, 6)
    return out


def main(report_path: Path, model: str, adapter: Path | None = None) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="mongars-ray-"))
    env = {
        **os.environ,
        "MONGARS_DATA_DIR": str(work / "data"),
        "MONGARS_SECRET_KEY": "ray-session-secret-key-that-is-long-enough",
        "MONGARS_LLM__MODEL_PATH": model,
        "MONGARS_LLM__TEMPERATURE": "0",
        "MONGARS_LLM__MAX_TOKENS": "48",
        "MONGARS_RAY__PORT": str(RAY_PORT),
        "MONGARS_RAY__MIN_REPLICAS": "2",
        "MONGARS_RAY__MAX_REPLICAS": "2",
        "MONGARS_RAY__REPLICA_CPUS": "0.5",
        "MONGARS_RAY__REPLICA_THREADS": "1",
        "MONGARS_MEMORY__ENABLED": "false",
        "MONGARS_RESEARCH__DOCUMENTS": "false",
        "MONGARS_SCHEDULER__ENABLED": "false",
        "MONGARS_LOG_LEVEL": "warning",
        "MONGARS_NEW_PASSWORD": PASSWORD,
    }
    cli = [sys.executable, "-m", "mongars.cli"]
    log = (work / "ray.log").open("wb")
    ray_proc = subprocess.Popen(
        [*cli, "ray", "serve", "--cpus", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    report: dict[str, Any] = {}
    api_proc = None
    try:
        started = time.time()
        wait_http(f"http://127.0.0.1:{RAY_PORT}/v1/info", ray_proc, 150)
        report["ray_start_s"] = round(time.time() - started, 1)
        pids = two_replicas_running(f"http://127.0.0.1:{RAY_PORT}")
        report["replicas"] = len(pids)
        report["compare"] = asyncio.run(compare(model, work))
        if adapter is not None:
            report["adapter"] = activate(work, adapter, f"http://127.0.0.1:{RAY_PORT}", pids)
        bad = httpx.post(f"http://127.0.0.1:{RAY_PORT}/v1/stream", json={"messages": []})
        report["bad_request_status"] = bad.status_code
        api_env = {
            **env,
            "MONGARS_LLM__PROVIDER": "ray",
            "MONGARS_LLM__BASE_URLS": f"http://127.0.0.1:{RAY_PORT}",
        }
        subprocess.run([*cli, "db", "upgrade"], env=api_env, check=True, capture_output=True)
        subprocess.run(
            [*cli, "users", "create", "alice"], env=api_env, check=True, capture_output=True
        )
        api_log = (work / "api.log").open("wb")
        api_proc = subprocess.Popen(
            [*cli, "serve", "--port", str(API_PORT)],
            env=api_env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{API_PORT}"
        wait_http(f"{base}/ready", api_proc, 120)
        token = httpx.post(f"{base}/token", data={"username": "alice", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        chat = httpx.post(
            f"{base}/api/v1/conversation/chat",
            json={"message": "What is the capital of France?"},
            headers=headers,
            timeout=120,
        )
        report["chat_status"] = chat.status_code
        report["chat"] = chat.json()
        report["burst"] = burst(base, token.json()["access_token"], 8, kill_pid=min(pids))
        history = httpx.get(
            f"{base}/api/v1/conversation/history?limit=50", headers=headers, timeout=30
        ).json()
        report["stored_queries"] = [h["query"] for h in history]
        report["metrics"] = httpx.get(f"{base}/metrics", timeout=30).text
        # Serve replaces the killed replica (its controller notices within seconds).
        after = two_replicas_running(f"http://127.0.0.1:{RAY_PORT}")
        report["after_kill_pids"] = sorted(after)
        if adapter is not None and len(after) == 2:
            report["rollback"] = rollback(
                work, f"http://127.0.0.1:{RAY_PORT}", report["adapter"]["sha"], after, after - pids
            )
    finally:
        for proc in (api_proc, ray_proc):
            if proc is not None:
                proc.send_signal(signal.SIGINT if proc is ray_proc else signal.SIGTERM)
        for proc in (api_proc, ray_proc):
            if proc is not None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ray_stop()  # a killed driver leaves its raylet and workers
        report["ray_log_tail"] = (work / "ray.log").read_text(errors="replace")[-3000:]
        if (work / "api.log").exists():
            report["api_log_tail"] = (work / "api.log").read_text(errors="replace")[-4000:]
        report_path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]) if len(sys.argv) > 3 else None)
