"""Training as an idle job, with the real worker on the served GGUF: a user request
makes the run checkpoint and stop within one optimizer step; the next idle period
resumes it from that checkpoint, and it ends with the adapter an uninterrupted run
makes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mongars.bench.sommeil import newest_training_run
from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.training.test_runs_api import TINY, dataset, wait
from tests.training.test_trainer import adapter_of, max_diff

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(900)]

STEPS = 6


def run_row(api: Api) -> dict[str, Any] | None:
    """The newest training run, read from the database: polling the API would count
    as user activity and keep the machine busy."""
    return newest_training_run(Path(api.runtime.settings.data_dir) / "mongars.db")


def until(
    api: Api, check: Callable[[dict[str, Any]], bool], timeout: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = run_row(api)
        if row is not None and check(row):
            return row
        assert time.monotonic() < deadline, row
        time.sleep(0.1)


def job_runs(
    api: Api, admin: dict[str, str], state: str, timeout: float = 300
) -> list[dict[str, Any]]:
    """The training job's runs, newest first, once one has ended in ``state`` (the jobs
    API is not user activity)."""
    deadline = time.monotonic() + timeout
    while True:
        r = api.client.get("/api/v1/jobs/training.train/runs", headers=admin)
        items: list[dict[str, Any]] = r.json()["items"]
        if any(i["state"] == state for i in items):
            return items
        assert time.monotonic() < deadline, items[:2]
        time.sleep(0.1)


def test_training_yields_to_a_user_and_resumes_to_the_same_adapter(
    api_factory: Callable[..., Api], model_path: Path
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["The capital of France is Paris."]),
        llm={"model_path": str(model_path)},
        training={**TINY, "max_steps": STEPS},
        scheduler={
            "enabled": True,
            "idle_after_s": 2.0,
            "cycle_schedule": "* * * * * *",
            "max_cpu_pressure": 100,
            "max_load_per_core": 1000,
            "activity_write_s": 0,
        },
    )
    admin, dataset_id = dataset(api)
    # Users gone: the idle cycle trains on the new approved dataset.
    until(api, lambda r: r["status"] == "running" and r["step"] >= 2)
    before = run_row(api)
    assert before is not None
    came_back = time.monotonic()
    assert api.client.get("/api/v1/user/me", headers=admin).status_code == 200
    paused = until(api, lambda r: r["status"] == "paused", timeout=120)
    yield_s = time.monotonic() - came_back
    assert paused["step"] <= before["step"] + 1, (before, paused)  # within one step
    assert paused["step"] < STEPS
    runs = job_runs(api, admin, "yielded")  # the next idle period may have resumed it
    assert runs[-1]["state"] == "yielded" and runs[-1]["trigger"] == "idle"
    # Away again: the next cycle resumes from the checkpoint and finishes.
    done = until(api, lambda r: r["status"] in ("completed", "failed"), timeout=600)
    assert done["status"] == "completed" and done["step"] == STEPS
    runs = job_runs(api, admin, "succeeded")
    assert runs[0]["state"] == "succeeded" and runs[0]["result"]["runs"] == 1
    assert runs[0]["energy_wh"] > 0 and runs[0]["cpu_s"] > 0
    final = api.client.get(f"/api/v1/training/runs/{done['id']}", headers=admin).json()
    assert final["perplexity_adapter"] is not None
    # The same dataset, trained without interruption, gives the same adapter.
    r = api.client.post(
        "/api/v1/training/runs", json={"dataset_id": dataset_id, "max_steps": STEPS}, headers=admin
    )
    assert r.status_code == 202, r.text
    ref = wait(api, admin, r.json()["id"], lambda x: x["status"] in ("completed", "failed"), 600)
    assert ref["status"] == "completed", ref["error"]
    runs_dir = Path(api.runtime.settings.data_dir) / "training" / "runs"
    assert max_diff(adapter_of(runs_dir / done["id"]), adapter_of(runs_dir / ref["id"])) < 1e-4
    print(f"yielded {yield_s:.2f} s after the user came back")
