"""Training runs through the API with the real worker process on the real served GGUF:
progress, evaluation and the adapter; pause, resume, cancel; one run at a time;
refusals (quarantined or missing dataset, corrupt checkpoint, non-admins)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.training.test_datasets_api import chat, consent, curate, users

R = "/api/v1/training/runs"
TINY = {"batch_size": 2, "seq_len": 64, "checkpoint_every": 1, "threads": 2}

# A run loads the model twice (train, evaluate); on a busy 2-core machine that is minutes.
pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def trained(api_factory: Callable[..., Api], model_path: Path) -> Api:
    return api_factory(
        provider=ScriptedLLM(replies=["The capital of France is Paris."]),
        llm={"model_path": str(model_path)},
        training=TINY,
    )


def dataset(api: Api) -> tuple[dict[str, str], str]:
    admin, alice, _ = users(api)
    consent(api, alice, True)
    for conv in range(4):
        chat(api, alice, f"What is the capital of France? ({conv})", session=f"c{conv}")
    d = curate(api, admin, min_confidence=0.0, min_records=1, held_out_share=0.25)
    assert d["status"] == "approved" and d["held_out"] == 1
    return admin, d["id"]


def wait(api: Api, who: dict[str, str], run_id: str, until: Callable[[dict[str, Any]], bool],
         timeout: float = 240) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        run = api.client.get(f"{R}/{run_id}", headers=who).json()
        if until(run):
            return dict(run)
        assert time.monotonic() < deadline, run
        time.sleep(0.5)


def done(run: dict[str, Any]) -> bool:
    return run["status"] in ("completed", "failed", "cancelled", "paused")


def test_a_run_trains_evaluates_and_exports(trained: Api) -> None:
    admin, dataset_id = dataset(trained)
    r = trained.client.post(R, json={"dataset_id": dataset_id, "max_steps": 3}, headers=admin)
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["status"] in ("queued", "running")
    busy = trained.client.post(R, json={"dataset_id": dataset_id}, headers=admin)
    assert busy.status_code == 409 and busy.json()["code"] == "training_busy"
    final = wait(trained, admin, run["id"], done)
    assert final["status"] == "completed", final["error"]
    assert final["step"] == final["total_steps"] == 3 and final["progress"] == 1.0
    assert final["perplexity_base"] > 1 and final["perplexity_adapter"] > 1
    metrics = final["metrics"]
    assert metrics["logits_differ"] and "parity_ppl_llamacpp" in metrics
    assert "forgetting_delta" in metrics and metrics["regression_total"] > 0
    assert final["adapter_sha256"] and final["mlflow_run_id"]
    run_dir = Path(trained.runtime.settings.data_dir) / "training" / "runs" / run["id"]
    assert (run_dir / "adapter.gguf").is_file()
    assert (Path(trained.runtime.settings.data_dir) / "mlflow" / "mlflow.db").is_file()
    text = trained.client.get("/metrics").text
    assert "training_steps_total" in text and "training_energy_joules_total" in text
    listed = trained.client.get(R, headers=admin).json()["items"]
    assert [x["id"] for x in listed] == [run["id"]]
    again = trained.client.post(f"{R}/{run['id']}/cancel", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "run_state"


def test_pause_resume_and_a_corrupt_checkpoint(trained: Api) -> None:
    admin, dataset_id = dataset(trained)
    body = {"dataset_id": dataset_id, "max_steps": 40}
    run = trained.client.post(R, json=body, headers=admin).json()
    wait(trained, admin, run["id"], lambda x: x["step"] >= 1)
    r = trained.client.post(f"{R}/{run['id']}/pause", headers=admin)
    assert r.status_code == 200 and r.json()["status"] in ("pausing", "paused")
    paused = wait(trained, admin, run["id"], done)
    assert paused["status"] == "paused" and 1 <= paused["step"] < 40
    bad = trained.client.post(f"{R}/{run['id']}/pause", headers=admin)
    assert bad.status_code == 200  # pausing a paused run is a no-op
    run_dir = Path(trained.runtime.settings.data_dir) / "training" / "runs" / run["id"]
    for adapter in (run_dir / "checkpoints").glob("step-*/adapter.safetensors"):
        adapter.write_bytes(b"garbage")
    r = trained.client.post(f"{R}/{run['id']}/resume", headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "checkpoint_corrupt", r.text
    r = trained.client.post(f"{R}/{run['id']}/cancel", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert not (run_dir / "checkpoints").exists()


def test_resume_continues_to_the_end(trained: Api) -> None:
    admin, dataset_id = dataset(trained)
    run = trained.client.post(R, json={"dataset_id": dataset_id, "max_steps": 6}, headers=admin)
    run_id = run.json()["id"]
    wait(trained, admin, run_id, lambda x: x["step"] >= 2)
    trained.client.post(f"{R}/{run_id}/pause", headers=admin)
    paused = wait(trained, admin, run_id, done)
    assert paused["status"] == "paused", paused["error"]
    r = trained.client.post(f"{R}/{run_id}/resume", headers=admin)
    assert r.status_code == 200, r.text
    final = wait(trained, admin, run_id, lambda x: x["status"] in ("completed", "failed"))
    assert final["status"] == "completed", final["error"]
    assert final["step"] == 6 and final["perplexity_adapter"] is not None


def test_refusals(trained: Api) -> None:
    admin, dataset_id = dataset(trained)
    alice = trained.login("alice")
    assert trained.client.post(R, json={"dataset_id": dataset_id}, headers=alice).status_code == 403
    assert trained.client.get(R, headers=alice).status_code == 403
    missing = trained.client.post(R, json={"dataset_id": "nope"}, headers=admin)
    assert missing.status_code == 404
    bad = trained.client.post(R, json={"dataset_id": dataset_id, "objective": "x"}, headers=admin)
    assert bad.status_code == 422
    bad = trained.client.post(R, json={"dataset_id": dataset_id, "max_steps": 0}, headers=admin)
    assert bad.status_code == 422
    assert trained.client.get(f"{R}/nope", headers=admin).status_code == 404
    assert trained.client.post(f"{R}/nope/resume", headers=admin).status_code == 404
