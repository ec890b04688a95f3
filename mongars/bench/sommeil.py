"""`mongars bench sommeil`: what background training costs users, and how fast it yields.

One real `mongars serve` on the embedded model with the scheduler on:

1. Idle machine: a chat workload (streamed answers, one after another); time to
   first token p50/p95.
2. Worst case, the idle gate bypassed: the same workload while a training job (an
   admin's run, which does not wait for idle time) trains LoRA in the background.
3. Yield: with the gate on, users away, the idle cycle resumes the training; then one
   user request; the seconds until the run has checkpointed and stopped, next to the
   length of one training step.

Targets (issue): time to first token while training <= 1.3x idle; yield within one
training step.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mongars.bench.common import (
    PASSWORD,
    create_users,
    embedded_env,
    free_port,
    model_and_threads,
    percentile,
    start_server,
    stop_server,
)
from mongars.settings import Settings

console = Console()
QUESTIONS = [
    "What is the capital of France?",
    "Give me one tip for better sleep.",
    "What is two plus two?",
    "Name a fruit that is yellow.",
    "What colour is the sky on a clear day?",
    "Say hello in Spanish.",
]


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=300)
        self.tokens: dict[str, dict[str, str]] = {}

    def login(self, name: str) -> dict[str, str]:
        r = self.http.post("/token", data={"username": name, "password": PASSWORD})
        r.raise_for_status()
        self.tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.tokens[name]

    def ttft(self, who: dict[str, str], message: str, session: str) -> tuple[float, int]:
        """Seconds to the first streamed token, and the turn id."""
        start = time.perf_counter()
        first: float | None = None
        turn = 0
        body = {"message": message, "session_id": session}
        with self.http.stream(
            "POST", "/api/v1/conversation/chat/stream", json=body, headers=who
        ) as r:
            r.raise_for_status()
            event = ""
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "delta" and first is None:
                        first = time.perf_counter() - start
                    if event == "done":
                        turn = int(json.loads(line[5:])["turn_id"])
                    if event in ("error", "cancelled"):
                        raise RuntimeError(f"chat failed: {line}")
        if first is None:
            raise RuntimeError("no token was streamed")
        return first, turn


def _workload(client: Client, who: dict[str, str], rounds: int, tag: str) -> list[float]:
    return [client.ttft(who, QUESTIONS[i % len(QUESTIONS)], f"{tag}-{i}")[0] for i in range(rounds)]


def newest_training_run(db: Path) -> dict[str, Any] | None:
    """The newest training run, from the database (polling the API would be activity)."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT id, status, step FROM training_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    return dict(row) if row else None


def _wait_row(db: Path, check: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = newest_training_run(db)
        if row is not None and check(row):
            return row
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}: {row}")
        time.sleep(0.05)


def _step_seconds(run_dir: Path) -> float:
    """Median seconds between two consecutive optimizer steps of the worker's last
    session (the earlier ones include the time it was stopped for answers)."""
    events = [json.loads(x) for x in (run_dir / "progress.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(events) if e["event"] == "start"]
    events = events[starts[-1] :] if starts else events
    steps = [(e["step"], e["t"]) for e in events if e["event"] == "step"]
    gaps = [t2 - t1 for (s1, t1), (s2, t2) in itertools.pairwise(steps) if s2 == s1 + 1]
    return statistics.median(gaps) if gaps else float("nan")


def run_bench_sommeil(rounds: int, max_tokens: int, train_steps: int) -> None:
    _, model_path, threads = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-sommeil-") as tmp:
        port = free_port()
        env = {
            **embedded_env(tmp, model_path, max_tokens, threads),
            "MONGARS_SCHEDULER__ENABLED": "true",
            "MONGARS_SCHEDULER__IDLE_AFTER_S": "3",
            "MONGARS_SCHEDULER__CYCLE_SCHEDULE": "*/2 * * * * *",
            "MONGARS_SCHEDULER__ACTIVITY_WRITE_S": "0",
            "MONGARS_SCHEDULER__MAX_LOAD_PER_CORE": "1000",  # our own load must not block it
            "MONGARS_SCHEDULER__MAX_CPU_PRESSURE": "100",
            "MONGARS_SCHEDULER__CURATE_MIN_FEEDBACK": "100000",  # the bench curates by hand
            "MONGARS_TRAINING__MAX_STEPS": str(train_steps),
            "MONGARS_TRAINING__BATCH_SIZE": "2",
            "MONGARS_TRAINING__SEQ_LEN": "128",
            "MONGARS_TRAINING__CHECKPOINT_EVERY": "1",
            "MONGARS_TRAINING__MLFLOW": "false",
        }
        folder = Settings(_env_file=None, data_dir=Path(tmp), database_url="")  # type: ignore[call-arg]
        create_users(folder, ["admin", "alice"], admins=["admin"])
        proc = start_server(["-m", "mongars.cli", "serve", "--port", str(port)], env, port)
        try:
            results = _measure(Client(f"http://127.0.0.1:{port}"), Path(tmp), rounds)
        finally:
            stop_server(proc)
    _report(results, rounds, train_steps)


def _measure(client: Client, data: Path, rounds: int) -> dict[str, Any]:
    admin, alice = client.login("admin"), client.login("alice")
    db = data / "mongars.db"
    client.http.put("/api/v1/profile", json={"allow_training": True}, headers=alice)
    console.print("warming up and building a dataset from alice's rated answers...")
    for i in range(8):
        _, turn = client.ttft(alice, QUESTIONS[i % len(QUESTIONS)], f"data-{i}")
        client.http.post(
            f"/api/v1/conversation/turns/{turn}/feedback", json={"rating": "up"}, headers=alice
        )
    r = client.http.post(
        "/api/v1/training/datasets",
        json={"policy": {"min_records": 4, "held_out_share": 0.25}},
        headers=admin,
    )
    r.raise_for_status()
    console.print(f"1/3 idle machine: {rounds} streamed answers...")
    idle = _workload(client, alice, rounds, "idle")
    console.print("2/3 the same while training runs (idle gate bypassed)...")
    client.http.post("/api/v1/jobs/training.train/run", headers=admin).raise_for_status()
    _wait_row(db, lambda r: r["status"] == "running" and r["step"] >= 1, 600, "training")
    busy = _workload(client, alice, rounds, "busy")
    still = newest_training_run(db)
    trained_meanwhile = bool(still and still["status"] == "running")
    client.http.post("/api/v1/jobs/training.train/cancel", headers=admin).raise_for_status()
    _wait_row(db, lambda r: r["status"] in ("paused", "completed"), 600, "the run to pause")
    console.print("3/3 users away: the idle cycle resumes training; then one user request...")
    resumed = _wait_row(db, lambda r: r["status"] == "running", 600, "the idle cycle's resume")
    # Steady state: the worker has loaded the model and made a step (a request during
    # loading waits for the load, then one step).
    row = _wait_row(db, lambda r: r["step"] > resumed["step"] + 1, 600, "a step")
    step_then = row["step"]
    came_back = time.perf_counter()
    client.http.get("/api/v1/user/me", headers=alice).raise_for_status()
    paused = _wait_row(db, lambda r: r["status"] != "running" and r["status"] != "pausing",
                       600, "the yield")  # fmt: skip
    yield_s = time.perf_counter() - came_back
    step_s = _step_seconds(data / "training" / "runs" / paused["id"])
    return {
        "idle": idle,
        "busy": busy,
        "trained_meanwhile": trained_meanwhile,
        "yield_s": yield_s,
        "step_s": step_s,
        "steps_after": paused["step"] - step_then,
        "yield_state": paused["status"],
    }


def _report(m: dict[str, Any], rounds: int, train_steps: int) -> None:
    idle, busy = m["idle"], m["busy"]
    table = Table(title=f"Sommeil: time to first token, {rounds} answers each (seconds)")
    table.add_column("")
    table.add_column("idle machine (baseline)", justify="right")
    table.add_column("while training", justify="right")
    table.add_column("ratio", justify="right")
    for name, q in (("p50", 50), ("p95", 95)):
        a, b = percentile(idle, q), percentile(busy, q)
        table.add_row(f"TTFT {name}", f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}x")
    console.print(table)
    p50 = percentile(busy, 50) / percentile(idle, 50)
    console.print(
        f"TTFT p50 while training: {p50:.2f}x idle (target <= 1.3x) "
        f"[{'green' if p50 <= 1.3 else 'red'}]{'met' if p50 <= 1.3 else 'NOT met'}[/]"
        + ("" if m["trained_meanwhile"] else " (the run ended before the workload did)")
    )
    within = m["steps_after"] <= 1
    console.print(
        f"Yield: the run {m['yield_state']} {m['yield_s']:.2f} s after the user request, "
        f"{m['steps_after']} step(s) later; one training step takes {m['step_s']:.2f} s "
        f"[{'green' if within else 'red'}]({'within' if within else 'NOT within'} one step)[/]"
    )
