"""The training child process: ``python -m mongars.training.worker RUN_DIR [--resume]``.

Reads ``RUN_DIR/spec.json``, trains at low CPU priority, evaluates, and appends
JSON events to ``RUN_DIR/progress.jsonl`` (start, step, phase, evaluated, done,
paused, error) for the server or CLI that follows it. SIGTERM asks for a pause
(a checkpoint is written at the next step); SIGUSR1/SIGUSR2 say that users are
chatting / have stopped, so the worker uses fewer / all threads."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mongars.training import spec as run_spec
from mongars.training.spec import file_sha256

EXIT_PAUSED = 75


class Events:
    """Appends one JSON line per event (one write each, so a reader never sees half)."""

    def __init__(self, path: Path, objective: str) -> None:
        self.path = path
        self.objective = objective

    def emit(self, event: str, **values: Any) -> None:
        line = json.dumps({"event": event, "objective": self.objective, "t": time.time(), **values})
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


class Controls:
    """What signals asked for, read by the training loop between steps."""

    def __init__(self, threads: int, threads_when_busy: int) -> None:
        self.stop = False
        self.full = threads or os.cpu_count() or 1
        self.busy = max(1, min(threads_when_busy, self.full))
        self.want = self.full
        signal.signal(signal.SIGTERM, self._pause)
        signal.signal(signal.SIGINT, self._pause)
        signal.signal(signal.SIGUSR1, lambda *_: setattr(self, "want", self.busy))
        signal.signal(signal.SIGUSR2, lambda *_: setattr(self, "want", self.full))

    def _pause(self, *_: Any) -> None:
        self.stop = True

    def apply_threads(self) -> None:
        import torch

        if torch.get_num_threads() != self.want:
            torch.set_num_threads(self.want)


def run(run_dir: Path, resume: bool) -> int:
    spec = run_spec.read(run_dir)
    events = Events(run_dir / run_spec.PROGRESS, spec["objective"])
    lock_file = Path(spec["lock"])
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_file.open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        events.emit("error", message="another training run is active on this machine")
        return 1
    os.nice(int(spec.get("nice", 19)))
    with contextlib.suppress(AttributeError, OSError):  # Linux: run only on idle CPU time
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    controls = Controls(int(spec.get("threads", 0)), int(spec.get("threads_when_busy", 1)))
    tracker = None
    try:
        data = Path(spec["dataset_dir"]) / "data.jsonl"
        if file_sha256(data) != spec["dataset_sha256"]:
            raise RuntimeError(f"dataset {spec['dataset_id']} changed on disk since curation")
        from mongars.training.tracking import Tracker
        from mongars.training.trainer import TrainConfig, train

        tracker = Tracker(spec["mlflow"], run_dir, spec["run_id"])
        params = dict(spec["config"])
        tracker.params(
            {**params, "dataset_id": spec["dataset_id"], "base_model": spec["base_model"]}
        )
        config = TrainConfig(
            base_model=spec["base_model"],
            objective=spec["objective"],
            max_steps=params["max_steps"],
            batch_size=params["batch_size"],
            seq_len=params["seq_len"],
            lr=params["learning_rate"],
            lora_r=params["lora_r"],
            lora_alpha=params["lora_alpha"],
            checkpoint_every=params["checkpoint_every"],
            seed=params.get("seed", 0),
            threads=controls.want,
        )
        events.emit("start", total_steps=config.max_steps, step=0, mlflow_run_id=tracker.run_id)
        cpu0 = time.process_time()
        clock = {"start": time.monotonic(), "last": time.monotonic(), "steps": 0}

        def on_progress(p: dict[str, Any]) -> None:
            now = time.monotonic()
            clock["steps"] += 1
            step_s, clock["last"] = now - clock["last"], now
            events.emit(
                "step",
                step=p["step"],
                total_steps=p["total_steps"],
                loss=p.get("loss"),
                eta_s=p.get("eta_s"),
                step_tokens=p.get("tokens", 0),
                steps_per_s=clock["steps"] / max(now - clock["start"], 1e-9),
                tokens_per_s=p.get("tokens", 0) / max(step_s, 1e-9),
                cpu_s=time.process_time() - cpu0,
            )
            tracker.metrics({"loss": p.get("loss") or 0.0, "lr": p.get("lr", 0.0)}, p["step"])
            controls.apply_threads()

        provenance = {
            "mongars.dataset_id": spec["dataset_id"],
            "mongars.dataset_sha256": spec["dataset_sha256"],
            "mongars.run_id": spec["run_id"],
        }
        result = train(
            config,
            spec["dataset_dir"],
            run_dir,
            on_progress=on_progress,
            should_stop=lambda: controls.stop,
            resume=resume,
            provenance=provenance,
        )
        if result.status == "paused":
            events.emit("paused", step=result.step)
            return EXIT_PAUSED
        events.emit("phase", name="evaluating")
        metrics = _evaluate(spec, run_dir, controls)
        metrics.update(
            {
                "train_examples": result.train_examples,
                "skipped_examples": result.skipped_examples,
                "train_tokens": result.tokens,
                "train_seconds": result.elapsed_s,
                "steps_per_s": result.step / max(result.elapsed_s, 1e-9),
                "tokens_per_s": result.tokens / max(result.elapsed_s, 1e-9),
                "cpu_seconds": time.process_time() - cpu0,
                "final_loss": result.loss,
            }
        )
        scalar = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        tracker.metrics(scalar, result.step)
        adapter = run_dir / run_spec.ADAPTER
        sha = file_sha256(adapter) if adapter.exists() else None
        tracker.artifact(adapter)
        tracker.end("FINISHED")
        events.emit("done", metrics=metrics, adapter_sha256=sha, step=result.step)
        return 0
    except Exception as exc:  # reported to the server; the traceback goes to worker.log
        traceback.print_exc()
        events.emit("error", message=f"{type(exc).__name__}: {exc}"[:2000])
        if tracker is not None:
            tracker.end("FAILED")
        return 1
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _evaluate(spec: dict[str, Any], run_dir: Path, controls: Controls) -> dict[str, Any]:
    """SFT: held-out perplexity (base vs adapter), forgetting, probes, llama.cpp parity.
    MNTP trains an encoder (its adapter never generates): held-out retrieval."""
    if spec["objective"] == "mntp":
        from mongars.training.mntp import evaluate_retrieval

        return evaluate_retrieval(
            spec["base_model"], run_dir, spec["dataset_dir"], threads=controls.want
        )
    from mongars.training.evaluate import evaluate

    return evaluate(
        spec["base_model"],
        run_dir,
        spec["dataset_dir"],
        threads=controls.want,
        seq_len=int(spec["config"]["seq_len"]),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mongars.training.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from mongars.offline import quiet_libraries

    quiet_libraries()  # before torch, transformers and MLflow load
    # Idle OpenMP threads sleep instead of spinning: with spinning, a step got 3-25x
    # slower whenever the server (or anything else) wanted a core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run_dir = args.run_dir.resolve()
    with contextlib.ExitStack() as stack:
        if run_spec.read(run_dir).get("offline"):
            from mongars.offline import guard

            stack.enter_context(guard())  # loopback only
        return run(run_dir, args.resume)


if __name__ == "__main__":
    sys.exit(main())
