"""What a training run is told: ``<run_dir>/spec.json``, written by the server (or the
CLI) and read by the worker process. JSON only, so both sides stay independent."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mongars.errors import FeatureDisabled
from mongars.settings import Settings, TrainingSettings
from mongars.training.errors import CheckpointCorrupt
from mongars.training.models import TrainingRun

SPEC = "spec.json"
PROGRESS = "progress.jsonl"
LOG = "worker.log"
ADAPTER = "adapter.gguf"


def runs_root(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "training" / "runs"


def served_gguf(settings: Settings) -> Path:
    """The GGUF the server generates with: training must use exactly these weights."""
    if settings.llm.provider != "llamacpp":
        raise FeatureDisabled(
            "training needs the embedded llama.cpp provider (MONGARS_LLM__PROVIDER=llamacpp): "
            "it trains on the served GGUF's own weights"
        )
    if settings.llm.model_path:
        return Path(settings.llm.model_path).resolve()
    from mongars.llm.model_files import prepare_embedded_model

    return prepare_embedded_model(settings.data_dir, settings.llm.embedded_model).resolve()


def params(cfg: TrainingSettings, objective: str, max_steps: int) -> dict[str, Any]:
    return {
        "objective": objective,
        "max_steps": max_steps,
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        "learning_rate": cfg.learning_rate,
        "lora_r": cfg.lora_r,
        "lora_alpha": cfg.lora_alpha,
        "checkpoint_every": cfg.checkpoint_every,
        "seed": 0,
    }


def write(settings: Settings, run: TrainingRun, dataset_dir: Path) -> Path:
    """Create the run folder with its spec.json (atomically)."""
    cfg = settings.training
    run_dir = runs_root(settings) / run.id
    run_dir.mkdir(parents=True, exist_ok=True)
    mlflow_dir = settings.data_dir.resolve() / "mlflow"
    spec = {
        "run_id": run.id,
        "objective": run.objective,
        "dataset_id": run.dataset_id,
        "dataset_dir": str(dataset_dir.resolve()),
        "dataset_sha256": run.dataset_sha256,
        "base_model": str(served_gguf(settings)),
        "config": run.params,
        "threads": cfg.threads,
        "threads_when_busy": cfg.threads_when_busy,
        "nice": cfg.nice,
        "lock": str(lock_path(settings)),
        # MONGARS_OFFLINE: the worker refuses outbound sockets too (it only needs files).
        "offline": settings.offline,
        "mlflow": {
            "enabled": cfg.mlflow,
            "tracking_uri": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "artifact_root": (mlflow_dir / "artifacts").as_uri(),
            "experiment": "monGARS",
        },
    }
    temp = run_dir / (SPEC + ".tmp")
    temp.write_text(json.dumps(spec, indent=2))
    os.replace(temp, run_dir / SPEC)
    return run_dir


def read(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / SPEC).read_text())
    return data


def lock_path(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "training" / "trainer.lock"


def check_checkpoint(run_dir: Path) -> None:
    """Before a resume: if the run wrote checkpoints, one of them must be intact (a
    corrupt checkpoint is refused now, not after the worker starts). A run paused
    before its first checkpoint starts again from step 0."""
    from mongars.training.checkpoint import CheckpointError, latest_checkpoint

    try:
        latest_checkpoint(run_dir)
    except CheckpointError as exc:
        raise CheckpointCorrupt(f"cannot resume: {exc}") from exc


def file_sha256(path: Path) -> str:
    """The sha256 of a dataset or adapter file (the manifest's, the run's, the bench's)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
