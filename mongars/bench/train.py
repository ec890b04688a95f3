"""`mongars bench train`: LoRA SFT on LoCoMo dialogue through the real trainer worker
(the server's code path), held-out perplexity base vs adapter, resume after kill -9,
and the MNTP objective's figures.

Dialogue turns become chat examples (one speaker's line as the user, the other's
reply as the assistant); two whole conversations are held out."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mongars.bench.locomo import Conversation, load
from mongars.settings import Settings
from mongars.training import spec as run_spec

console = Console()
SYSTEM = "You are monGARS, a helpful, honest and concise AI assistant."


def examples(conv: Conversation, split: str) -> list[dict[str, Any]]:
    """Consecutive turns by different speakers: the first asks, the second answers."""
    out = []
    for a, b in zip(conv.turns, conv.turns[1:], strict=False):
        if a.speaker == b.speaker or a.session != b.session:
            continue
        out.append(
            {
                "id": f"{conv.sample_id}:{b.dia_id}",
                "conversation": conv.sample_id,
                "split": split,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": a.text.removeprefix(f"{a.speaker}: ")},
                    {"role": "assistant", "content": b.text.removeprefix(f"{b.speaker}: ")},
                ],
            }
        )
    return out


def build_dataset(path: Path, folder: Path, train_n: int, held_n: int) -> str:
    """data.jsonl with ``train_n`` training examples and ``held_n`` held-out ones from
    the last two conversations; returns its sha256."""
    convs = load(path)
    train = [e for c in convs[:-2] for e in examples(c, "train")][:train_n]
    held = [e for c in convs[-2:] for e in examples(c, "held_out")][:held_n]
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train + held))
    return run_spec.file_sha256(data)


def write_spec(run_dir: Path, dataset: Path, sha: str, base: Path, config: dict[str, Any],
               objective: str) -> None:  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "run_id": run_dir.name,
        "objective": objective,
        "dataset_id": "locomo-bench",
        "dataset_dir": str(dataset),
        "dataset_sha256": sha,
        "base_model": str(base),
        "config": config,
        "threads": 0,
        "threads_when_busy": 1,
        "nice": 0,
        "lock": str(run_dir.parent / "trainer.lock"),
        "mlflow": {"enabled": False},
    }
    (run_dir / run_spec.SPEC).write_text(json.dumps(spec, indent=1))


def events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / run_spec.PROGRESS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_worker(run_dir: Path, resume: bool = False, kill_after_step: int | None = None,
               label: str = "") -> tuple[int, float]:  # fmt: skip
    """The worker as the server starts it; returns (exit status, wall seconds)."""
    args = [sys.executable, "-m", "mongars.training.worker", str(run_dir)]
    if resume:
        args.append("--resume")
    started = time.monotonic()
    with (run_dir / run_spec.LOG).open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log)  # noqa: S603 (our own module)
        seen = 0
        while proc.poll() is None:
            time.sleep(0.5)
            steps = [e for e in events(run_dir) if e["event"] == "step"]
            if steps and steps[-1]["step"] != seen:
                seen = steps[-1]["step"]
                total = steps[-1]["total_steps"]
                console.print(f"  {label} step {seen}/{total} loss {steps[-1]['loss']:.3f}")
            if kill_after_step is not None and seen >= kill_after_step:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                break
    return proc.returncode, time.monotonic() - started


def run_bench_train(dataset: Path, examples_n: int, seq_len: int, batch: int,
                    mntp_steps: int) -> None:  # fmt: skip
    from mongars.offline import quiet_libraries

    quiet_libraries()
    settings = Settings()
    base = run_spec.served_gguf(settings)
    work = Path(tempfile.mkdtemp(prefix="mongars-bench-train-"))
    try:
        data_dir = work / "dataset"
        sha = build_dataset(dataset, data_dir, examples_n, 48)
        steps = -(-examples_n // batch)
        config = {
            "max_steps": steps, "batch_size": batch, "seq_len": seq_len,
            "learning_rate": settings.training.learning_rate, "lora_r": settings.training.lora_r,
            "lora_alpha": settings.training.lora_alpha, "checkpoint_every": 10, "seed": 0,
        }  # fmt: skip
        console.print(f"SFT: {examples_n} examples, {steps} steps of {batch} x {seq_len} tokens")
        sft = work / "runs" / "sft"
        write_spec(sft, data_dir, sha, base, config, "sft")
        code, wall = run_worker(sft, label="sft")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        done = [e for e in events(sft) if e["event"] in ("done", "error")]
        if code != 0 or not done or done[-1]["event"] != "done":
            console.print(f"[red]SFT failed ({code}): {done[-1] if done else 'no event'}[/red]")
            console.print((sft / run_spec.LOG).read_text()[-3000:])
            raise SystemExit(1)
        m = done[-1]["metrics"]
        resume = _resume_check(work, data_dir, sha, base, config)
        held_out = load(dataset)[-2:]
        mntp = (
            _mntp(work, data_dir, sha, base, config, mntp_steps, held_out) if mntp_steps else None
        )
        _report(m, wall, peak_mb, examples_n, resume, mntp)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _resume_check(work: Path, data: Path, sha: str, base: Path,
                  config: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """kill -9 between checkpoints, resume: how many steps had to be redone."""
    every, kill_at = 4, 6
    run_dir = work / "runs" / "resume"
    write_spec(run_dir, data, sha, base, {**config, "max_steps": 8, "checkpoint_every": every},
               "sft")  # fmt: skip
    console.print(f"resume check: kill -9 after step {kill_at}, checkpoints every {every}")
    run_worker(run_dir, kill_after_step=kill_at, label="resume")
    reached = max(e["step"] for e in events(run_dir) if e["event"] == "step")
    before = len(events(run_dir))
    code, _ = run_worker(run_dir, resume=True, label="resume")
    after = [e for e in events(run_dir)[before:] if e["event"] == "step"]
    first = after[0]["step"] if after else None
    lost = reached - (first - 1) if first is not None else None
    return {"killed_at": reached, "resumed_at": first, "lost": lost, "interval": every,
            "ok": code == 0}  # fmt: skip


def _mntp(work: Path, data: Path, sha: str, base: Path, config: dict[str, Any],
          steps: int, held_out: list[Conversation]) -> dict[str, Any] | None:  # fmt: skip
    try:
        import mongars.training.mntp  # noqa: F401
    except ImportError:
        return None
    run_dir = work / "runs" / "mntp"
    write_spec(run_dir, data, sha, base, {**config, "max_steps": steps}, "mntp")
    code, wall = run_worker(run_dir, label="mntp")
    done = [e for e in events(run_dir) if e["event"] == "done"]
    metrics = dict(done[-1]["metrics"]) if done else {}
    if done:
        console.print("MNTP: LoCoMo evidence recall@10 (held-out conversations)...")
        metrics.update(locomo_recall(base, run_dir, held_out))
    return {"ok": code == 0 and bool(done), "wall_s": wall, "steps": steps,
            "metrics": metrics}  # fmt: skip


def locomo_recall(base: Path, run_dir: Path, convs: list[Conversation], k: int = 10
                  ) -> dict[str, float]:  # fmt: skip
    """Questions -> evidence turns of their own conversation: recall@k of the MNTP
    encoder against the base model (mean pooling, bidirectional attention) and against
    the MiniLM embedder memory search uses."""
    import warnings

    import numpy as np
    from peft import PeftModel

    from mongars.memory.embeddings import embedder_from
    from mongars.training.hf_model import load_base
    from mongars.training.mntp import embed

    model, tokenizer = load_base(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(model, str(run_dir / "adapter"))
    minilm = embedder_from(Settings())
    minilm.load()

    def recall(encode: Any) -> float:
        hits = total = 0
        for conv in convs:
            questions = [q for q in conv.questions if q.evidence]
            turns = np.asarray(encode([t.text for t in conv.turns]), dtype=np.float32)
            asked = np.asarray(encode([q.text for q in questions]), dtype=np.float32)
            ids = [t.dia_id for t in conv.turns]
            for q, vector in zip(questions, asked, strict=True):
                top = np.argsort(-(turns @ vector))[:k]
                hits += sum(1 for i in top if ids[i] in q.evidence)
                total += len(q.evidence)
        return hits / max(total, 1)

    def encoder(texts: list[str]) -> Any:
        return embed(model, tokenizer, texts, seq_len=64).numpy()

    with model.disable_adapter():
        base_recall = recall(encoder)
    out = {
        f"locomo_recall@{k}_base": base_recall,
        f"locomo_recall@{k}_mntp": recall(encoder),
        f"locomo_recall@{k}_minilm": recall(minilm.embed_sync),
    }
    minilm.close()
    return out


def _report(m: dict[str, Any], wall: float, peak_mb: float, n: int, resume: dict[str, Any],
            mntp: dict[str, Any] | None) -> None:  # fmt: skip
    table = Table(title="mongars bench train (SmolLM2-135M-Instruct, LoRA, this machine)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target / baseline")
    ratio = m["perplexity_adapter"] / m["perplexity_base"]
    rows = [
        ("examples trained", str(n), "200"),
        ("wall time (load, train, evaluate)", f"{wall:.0f} s", "≤ 600 s for 200 examples"),
        ("training time", f"{m['train_seconds']:.0f} s", ""),
        ("steps/s", f"{m['steps_per_s']:.3f}", ""),
        ("tokens/s (loss tokens)", f"{m['tokens_per_s']:.0f}", ""),
        ("peak RSS (worker)", f"{peak_mb:.0f} MiB", ""),
        ("held-out perplexity, base", f"{m['perplexity_base']:.2f}", "baseline"),
        ("held-out perplexity, adapter", f"{m['perplexity_adapter']:.2f}",
         f"ratio {ratio:.3f} (target ≤ 0.90)"),
        ("forgetting delta (generic text ppl)", f"{m['forgetting_delta']:+.2f}", "near 0"),
        ("regression probes", f"{m['regression_passed']}/{m['regression_total']}",
         f"base {m['regression_base_passed']}/{m['regression_total']}"),
        ("llama.cpp parity (ppl torch vs llama.cpp)",
         f"{m['parity_ppl_torch']:.2f} vs {m['parity_ppl_llamacpp']:.2f}",
         f"rel diff {m['parity_rel_diff']:.3f} (tol {m['parity_tolerance']})"),
        ("resume after kill -9: steps redone", str(resume["lost"]),
         f"≤ {resume['interval']} (checkpoint interval)"),
    ]  # fmt: skip
    if mntp is None:
        rows.append(("MNTP", "not available", "mongars.training.mntp missing"))
    else:
        x = mntp["metrics"]
        rows += [
            ("MNTP wall time", f"{mntp['wall_s']:.0f} s", f"{mntp['steps']} steps"),
            ("MNTP held-out retrieval MRR", f"{x.get('retrieval_adapter_mrr', 0):.3f}",
             f"base {x.get('retrieval_base_mrr', 0):.3f}, chance {x.get('chance_mrr', 0):.3f}"),
            ("MNTP LoCoMo evidence recall@10", f"{x.get('locomo_recall@10_mntp', 0):.3f}",
             f"base {x.get('locomo_recall@10_base', 0):.3f}, "
             f"MiniLM {x.get('locomo_recall@10_minilm', 0):.3f}"),
        ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)
