"""Completed training runs made by hand, for registry tests that need no trainer:
a TrainingRun row (status completed, objective sft) and its adapter file."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from mongars.db.engine import unit_of_work
from mongars.training import spec as run_spec
from mongars.training.models import TrainingRun
from mongars.training.repository import TrainingRepository

# Metrics of a run that passes every gate but the dataset's (tests have no dataset).
GOOD_METRICS: dict[str, Any] = {
    "perplexity_base": 20.0,
    "perplexity_adapter": 15.0,
    "perplexity_ratio": 0.75,
    "forgetting_delta": 0.1,
    "regression_passed": 5,
    "regression_total": 5,
    "parity_ok": True,
    "parity_rel_diff": 0.003,
    "parity_tolerance": 0.05,
}


def add_run(
    runtime: Any,
    portal: Any,
    content: bytes | Path,
    metrics: dict[str, Any] | None = None,
    dataset_id: str = "ds-gone",
) -> str:
    """A completed sft run whose adapter.gguf is ``content`` (bytes, or a real file)."""
    data = content.read_bytes() if isinstance(content, Path) else content
    run_id = uuid.uuid4().hex[:16]
    folder = run_spec.runs_root(runtime.settings) / run_id
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(data)

    async def insert() -> None:
        async with unit_of_work(runtime.sessions) as session:
            await TrainingRepository(session).add_run(
                TrainingRun(
                    id=run_id,
                    dataset_id=dataset_id,
                    dataset_sha256="0" * 64,
                    objective="sft",
                    status="completed",
                    params={},
                    metrics=dict(GOOD_METRICS if metrics is None else metrics),
                    adapter_sha256=hashlib.sha256(data).hexdigest(),
                )
            )

    portal.call(insert)
    return run_id
