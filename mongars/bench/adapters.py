"""`mongars bench adapters`: what a LoRA adapter costs the embedded model at serving time.

In one run, on the same loaded model:

1. hot-swap latency: ``LlamaCppProvider.use_adapter`` alternating base <-> adapter
   (p50/p95; target <= 0.2 s), and the first load of the file (read and sha256-checked);
2. generation tokens/s with and without the adapter: the same prompts, greedy, exactly
   the same number of tokens each (end-of-generation is not a stop here), after the
   same prompt evaluation (target: adapter >= 0.9x the base);
3. with ``--ray`` (a child process inside ``unshare --net``, loopback only, as the Ray
   tests run): `mongars ray serve` with 2 replicas, then the time from writing
   ``adapter_manifest.json`` until every replica serves the new version, and back to
   the base model (target <= 5 s each).

Without ``--adapter`` a tiny adapter is trained first (6 steps on a built-in synthetic
dataset of made-up facts, about a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mongars.bench.common import model_and_threads, percentile

console = Console()

SWAP_TARGET_S = 0.2
RATIO_TARGET = 0.9
FOLLOW_TARGET_S = 5.0

# The built-in training data: made-up towns and the colour of their doors, asked three
# ways (nothing the base model can know, so the adapter visibly changes its answers).
TOWNS = [
    ("Quenbrook", "violet"),
    ("Marlow Point", "amber"),
    ("Tessaly", "teal"),
    ("Oxdene", "crimson"),
    ("Brightwater", "olive"),
    ("Cindervale", "indigo"),
]
QUESTIONS = [
    "What colour are the doors in {p}?",
    "In {p}, what colour are the doors painted?",
    "Tell me the door colour of {p}.",
    "Which colour do people paint their doors in {p}?",  # held out
]
PROMPTS = [
    "Tell me a long story about a dragon who learns to bake bread.",
    "Explain how a bicycle works, step by step.",
    "What colour are the doors in Quenbrook?",
]


def synthetic_dataset(folder: Path) -> Path:
    """A training dataset folder (``data.jsonl``) in the trainer's format."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (place, colour) in enumerate(TOWNS):
        for j, question in enumerate(QUESTIONS):
            record = {
                "id": f"{i}-{j}",
                "conversation": f"c{i}",
                "split": "held_out" if j == len(QUESTIONS) - 1 else "train",
                "messages": [
                    {"role": "user", "content": question.format(p=place)},
                    {
                        "role": "assistant",
                        "content": f"In {place}, every door is painted {colour}.",
                    },
                ],
            }
            lines.append(json.dumps(record))
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def train_tiny_adapter(model_path: str, work: Path, steps: int = 6) -> Path:
    """A tiny SFT LoRA of the built-in dataset; its GGUF adapter file."""
    from mongars.training.trainer import TrainConfig, train

    config = TrainConfig(
        base_model=model_path,
        max_steps=steps,
        batch_size=4,
        seq_len=64,
        lr=1e-3,
        checkpoint_every=0,
        threads=1,
    )

    def progress(p: dict[str, Any]) -> None:
        if "step" in p:
            console.print(f"  step {p['step']}/{steps}, loss {p.get('loss', float('nan')):.3f}")

    data = synthetic_dataset(work / "dataset")
    result = train(config, data, work / "run", on_progress=progress)
    if not result.gguf_path:
        raise RuntimeError(f"training did not export an adapter ({result.status})")
    return Path(result.gguf_path)


# -- embedded: swaps and tokens/s ------------------------------------------------------


def _decode(provider: Any, tokens: list[int], n: int, fresh: bool = True) -> tuple[float, float]:
    """Greedy: (prompt evaluation s, decode tokens/s) for exactly ``n`` tokens."""
    llm = provider.llama
    if fresh:
        llm.reset()  # evaluate the whole prompt every time: the same work on both sides
    started = time.perf_counter()
    first = 0.0
    count = 0
    for _ in llm.generate(tokens, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count >= n:
            break
    end = time.perf_counter()
    return first - started, (count - 1) / (end - first)


async def _embedded(
    model_path: str, data_dir: Path, sha: str, threads: int, swaps: int, runs: int, tokens: int
) -> dict[str, Any]:
    from mongars.llm.base import ChatMessage, GenerationParams
    from mongars.llm.llamacpp import LlamaCppProvider

    provider = LlamaCppProvider(model_path, data_dir, 4096, threads=threads)
    await provider.start()
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        await provider.use_adapter(sha)
        out["first_load_s"] = time.perf_counter() - started
        await provider.use_adapter(None)
        walls: list[float] = []
        for i in range(swaps):
            target = sha if i % 2 == 0 else None
            started = time.perf_counter()
            await provider.use_adapter(target)
            walls.append(time.perf_counter() - started)
        out["swaps"] = walls

        prompts = [
            provider._tokens([ChatMessage("user", p)])  # the served prompt (chat template)
            for p in PROMPTS
        ]
        rates: dict[str | None, list[float]] = {None: [], sha: []}
        prefill: dict[str | None, list[float]] = {None: [], sha: []}
        for adapter in (None, sha):  # warm-up, not counted
            await provider.use_adapter(adapter)
            _decode(provider, prompts[0], 8)
        for r in range(runs):
            console.print(f"  generation round {r + 1}/{runs}")
            for tokens_in in prompts:
                # alternate which side goes first: neither gets a warmer cache
                order = (None, sha) if r % 2 == 0 else (sha, None)
                for adapter in order:
                    await provider.use_adapter(adapter)
                    pre, tps = _decode(provider, tokens_in, tokens)
                    prefill[adapter].append(pre)
                    rates[adapter].append(tps)
        # What a swap really defers: it clears the prompt cache, so the next answer
        # evaluates its whole prompt, where the same prompt again would reuse it.
        await provider.use_adapter(None)
        warm = []
        for tokens_in in prompts:
            _decode(provider, tokens_in, 2)
            warm.append(_decode(provider, tokens_in, 2, fresh=False)[0])
        out["prefill_cached"] = warm
        out["tps_base"], out["tps_adapter"] = rates[None], rates[sha]
        out["prefill_base"], out["prefill_adapter"] = prefill[None], prefill[sha]
        # what each side answers on the trained question (a visible difference)
        question = [ChatMessage("user", PROMPTS[-1])]
        for key, adapter in (("answer_base", None), ("answer_adapter", sha)):
            params = GenerationParams(max_tokens=24, temperature=0.0, seed=0, adapter=adapter)
            text = ""
            async for item in provider.stream(question, params):
                text += getattr(item, "text", "")
            out[key] = text.strip()
    finally:
        await provider.close()
    return out


# -- Ray: replicas following the manifest -----------------------------------------------


def _ray_in_namespace(model_path: str, adapter: Path, threads: int) -> dict[str, Any] | str:
    """The Ray part in a child process inside ``unshare --net``; its figures, or why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "skipped: unshare and ip are needed (run as root)"
    with tempfile.TemporaryDirectory(prefix="mongars-bench-adapters-ray-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "mongars.bench.adapters", str(report), model_path]
        run = subprocess.run(  # noqa: S603 - this very module, in a network namespace
            ["unshare", "--net", *argv, str(adapter), str(threads)],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=900,
        )
        if not report.exists():
            return f"failed (exit {run.returncode}): {run.stderr[-1500:]}"
        data: dict[str, Any] = json.loads(report.read_text())
        return data


def wait_replicas(
    url: str, want: str | None, replicas: int | set[int], timeout_s: float, since: float
) -> dict[str, Any]:
    """Poll ``/v1/info`` until replicas report ``want`` as the adapter they serve and
    the manifest's: ``replicas`` distinct pids, or every pid of a set. The seconds
    since ``since`` (a ``perf_counter``; None: not within ``timeout_s``) and what each
    pid reported last."""
    import httpx

    seen: dict[int, dict[str, Any]] = {}
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() - since < timeout_s:
            try:
                info = client.get(f"{url}/v1/info").json()
            except (httpx.HTTPError, ValueError):
                time.sleep(0.05)
                continue
            seen[int(info["pid"])] = {
                "adapter": info.get("adapter"),
                "default_adapter": info.get("default_adapter"),
            }
            serving = {
                p for p, s in seen.items() if s["adapter"] == want and s["default_adapter"] == want
            }
            if (len(serving) >= replicas) if isinstance(replicas, int) else replicas <= serving:
                return {"seconds": time.perf_counter() - since, "pids": seen}
            time.sleep(0.02)
    return {"seconds": None, "pids": seen}


def ray_child(report: Path, model_path: str, adapter: Path, threads: int) -> None:
    """Inside the namespace: 2 replicas, then the manifest to the adapter and back."""
    from mongars.adapters import store
    from mongars.bench.common import embedded_env, free_port
    from mongars.bench.ray_serve import RayServe, two_replicas_running

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # noqa: S607
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mongars-bench-adapters-") as tmp:
        data_dir = Path(tmp)
        sha, _ = store.import_file(data_dir, adapter)
        env = {
            **embedded_env(tmp, model_path, 48, threads),
            "MONGARS_SCHEDULER__ENABLED": "false",
            "MONGARS_RAY__REPLICA_THREADS": str(threads),
            "MONGARS_RAY__REPLICA_CPUS": "0.5",
        }
        started = time.perf_counter()
        ray = RayServe(env, free_port(), min_replicas=2, max_replicas=2)
        try:
            out["replicas"] = len(two_replicas_running(ray.url))
            out["start_s"] = time.perf_counter() - started
            current = {"version": 1, "sha256": sha, "path": str(store.adapter_path(data_dir, sha))}
            written = time.perf_counter()
            store.write_manifest(data_dir, current, [current])
            out["to_adapter"] = wait_replicas(ray.url, sha, 2, 30, written)
            written = time.perf_counter()
            store.write_manifest(data_dir, None, [current])
            out["to_base"] = wait_replicas(ray.url, None, 2, 30, written)
        finally:
            ray.stop()
    report.write_text(json.dumps(out))


# -- the run and its table -------------------------------------------------------------


def run_bench_adapters(
    adapter: Path | None, swaps: int, runs: int, tokens: int, threads: int, use_ray: bool
) -> None:
    from mongars.adapters import store

    _, model_path, default_threads = model_and_threads(console)
    threads = threads or default_threads
    with tempfile.TemporaryDirectory(prefix="mongars-bench-adapters-") as tmp:
        work = Path(tmp)
        if adapter is None:
            console.print("no --adapter: training a tiny one (6 steps, about a minute)...")
            started = time.perf_counter()
            adapter = train_tiny_adapter(model_path, work / "train")
            console.print(f"trained in {time.perf_counter() - started:.0f} s: {adapter}")
        sha, size = store.import_file(work / "data", adapter)
        console.print(f"adapter {sha[:12]} ({size / 1e6:.1f} MB); swaps and generation...")
        started = time.perf_counter()
        figures = asyncio.run(
            _embedded(model_path, work / "data", sha, threads, swaps, runs, tokens)
        )
        console.print(f"embedded part done in {time.perf_counter() - started:.0f} s")
        ray: dict[str, Any] | str | None = None
        if use_ray:
            console.print("Ray Serve, 2 replicas (inside unshare --net)...")
            started = time.perf_counter()
            ray = _ray_in_namespace(model_path, adapter, threads)
            console.print(f"Ray part done in {time.perf_counter() - started:.0f} s")
    _report(figures, ray, swaps, tokens, threads)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _report(
    f: dict[str, Any], ray: dict[str, Any] | str | None, swaps: int, tokens: int, threads: int
) -> None:
    table = Table(title=f"mongars bench adapters (embedded model, {threads} thread(s))")
    table.add_column("measure")
    table.add_column("base model (baseline)", justify="right")
    table.add_column("with the adapter", justify="right")
    table.add_column("figure vs target", justify="right")
    p50, p95 = percentile(f["swaps"], 50) * 1000, percentile(f["swaps"], 95) * 1000
    ok = "ok" if p95 / 1000 <= SWAP_TARGET_S else "MISSED"
    table.add_row(
        f"hot swap, {swaps}x base<->adapter",
        "",
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms",
        f"p95 {p95 / 1000:.4f} s (target <= {SWAP_TARGET_S} s) {ok}",
    )
    table.add_row("first load of the file", "", f"{f['first_load_s'] * 1000:.1f} ms", "")
    base, lora = _median(f["tps_base"]), _median(f["tps_adapter"])
    # each adapter run against the base run next to it (same prompt, same round): the
    # machine's other load moves both
    ratio = _median([a / b for a, b in zip(f["tps_adapter"], f["tps_base"], strict=True)])
    ok = "ok" if ratio >= RATIO_TARGET else "MISSED"
    table.add_row(
        f"decode tokens/s ({tokens} tokens, greedy, median of {len(f['tps_base'])})",
        f"{base:.1f}",
        f"{lora:.1f}",
        f"{ratio:.3f}x paired median, {lora / base:.3f}x of medians "
        f"(target >= {RATIO_TARGET}) {ok}",
    )
    pb, pa = _median(f["prefill_base"]) * 1000, _median(f["prefill_adapter"]) * 1000
    table.add_row("prompt evaluation", f"{pb:.1f} ms", f"{pa:.1f} ms", f"{pa / pb:.3f}x")
    cached = _median(f["prefill_cached"]) * 1000
    table.add_row(
        "first token, same prompt cached (no swap)",
        f"{cached:.1f} ms",
        "",
        f"a swap clears the cache: +{pb - cached:.0f} ms once",
    )
    if isinstance(ray, dict):
        for key, label in (("to_adapter", "manifest -> adapter"), ("to_base", "manifest -> base")):
            s = ray[key]["seconds"]
            ok = "ok" if s is not None and s <= FOLLOW_TARGET_S else "MISSED"
            shown = f"{s:.2f} s" if s is not None else "not within 30 s"
            table.add_row(
                f"Ray, {ray['replicas']} replicas: {label}",
                "",
                shown,
                f"target <= {FOLLOW_TARGET_S:.0f} s {ok}",
            )
    console.print(table)
    console.print(f"trained question, base:    {f['answer_base']!r}")
    console.print(f"trained question, adapter: {f['answer_adapter']!r}")
    if isinstance(ray, str):
        console.print(f"Ray: {ray}")
    elif ray is None:
        console.print("Ray: not measured (--ray)")


if __name__ == "__main__":  # the --ray child, inside unshare --net
    ray_child(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
