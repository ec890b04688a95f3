"""MLflow tracking for training runs: a local sqlite store and artifacts under the data
directory (``mongars mlflow ui`` shows them on 127.0.0.1). Imported by the worker only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mongars.training")

RUN_FILE = "mlflow_run_id"


class Tracker:
    """One MLflow run per training run; a resumed run logs into the same MLflow run."""

    def __init__(self, cfg: dict[str, Any], run_dir: Path, run_name: str) -> None:
        self.run_id: str | None = None
        if not cfg.get("enabled", True):
            return
        from mlflow.tracking import MlflowClient  # after quiet_libraries (no telemetry)

        Path(cfg["artifact_root"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=cfg["tracking_uri"])
        experiment = self.client.get_experiment_by_name(cfg["experiment"])
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(
                cfg["experiment"], artifact_location=cfg["artifact_root"]
            )
        )
        saved = run_dir / RUN_FILE
        if saved.exists():
            self.run_id = saved.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_name)
            self.run_id = run.info.run_id
            saved.write_text(self.run_id)

    def params(self, values: dict[str, Any]) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        new = [Param(k, str(v)) for k, v in values.items() if k not in existing]
        if new:
            self.client.log_batch(self.run_id, params=new)

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if self.run_id is None:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, step or 0)
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def artifact(self, path: Path) -> None:
        if self.run_id is not None and path.exists():
            self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str) -> None:
        """status: FINISHED | FAILED | KILLED (paused runs stay RUNNING... until resumed)."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)
