"""The built-in jobs doing their real work, run by hand through the jobs API: memory
sweep, re-embedding after an embedder change, consolidation, cache warming, curation."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.scheduler.test_jobs_api import wait_run


@pytest.fixture
def mem(api_factory: Callable[..., Api], embedder: Any) -> Api:
    return api_factory(
        provider=ScriptedLLM(replies=["Noted: you like green tea."]),
        embedder=embedder,
        memory={"enabled": True},
        scheduler={"enabled": True, "curate_min_feedback": 1},
    )


def run(api: Api, admin: dict[str, str], name: str) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/jobs/{name}/run", headers=admin)
    assert r.status_code == 202, r.text
    done = wait_run(api, admin, name, timeout=60)
    assert done["id"] == r.json()["id"]
    assert done["state"] == "succeeded", done
    return done


def set_memo(api: Api, name: str, memo: dict[str, Any]) -> None:
    with sqlite3.connect(Path(api.runtime.settings.data_dir) / "mongars.db") as db:
        db.execute("UPDATE job_states SET memo = ? WHERE name = ?", (json.dumps(memo), name))


def test_memory_jobs_do_their_work(mem: Api) -> None:
    admin = mem.setup_admin()
    names = {j["name"] for j in mem.client.get("/api/v1/jobs", headers=admin).json()["items"]}
    assert {"memory.index", "memory.reembed", "memory.consolidate", "cache.warm"} <= names
    for i in range(3):
        r = mem.client.post(
            "/api/v1/conversation/chat",
            json={"message": f"I like green tea ({i})."},
            headers=admin,
        )
        assert r.status_code == 200, r.text
    time.sleep(1.0)  # the per-write indexer embeds them
    assert run(mem, admin, "memory.index")["result"].get("indexed", 0) >= 0
    # Re-embedding: the first run records the embedder; a change re-embeds everything.
    first = run(mem, admin, "memory.reembed")
    assert first["result"] == {} and "recorded" in first["progress"]
    set_memo(mem, "memory.reembed", {"embedder": "another-model@pkg==0"})
    again = run(mem, admin, "memory.reembed")
    assert again["result"]["reembedded"] == 3 and again["steps"] >= 2
    assert run(mem, admin, "memory.reembed")["steps"] == 1  # nothing left to do
    hits = mem.client.get("/api/v1/memory/search?q=green%20tea", headers=admin).json()
    assert hits["items"], hits  # recall works on the new vectors
    consolidated = run(mem, admin, "memory.consolidate")
    assert consolidated["steps"] >= 2 and "pass complete" in consolidated["progress"]
    assert run(mem, admin, "cache.warm")["result"] == {"users": 1}


def test_curation_job_builds_a_dataset_from_consented_feedback(mem: Api) -> None:
    admin = mem.setup_admin()
    assert (
        mem.client.put("/api/v1/profile", json={"allow_training": True}, headers=admin).status_code
        == 200
    )
    turn = mem.client.post(
        "/api/v1/conversation/chat", json={"message": "Hello there"}, headers=admin
    ).json()["turn_id"]
    r = mem.client.post(
        f"/api/v1/conversation/turns/{turn}/feedback", json={"rating": "up"}, headers=admin
    )
    assert r.status_code in (200, 201), r.text
    done = run(mem, admin, "training.curate")
    assert done["result"]["feedback"] == 1 and done["result"]["records"] >= 1
    datasets = mem.client.get("/api/v1/training/datasets", headers=admin).json()["items"]
    assert len(datasets) == 1  # too few records for governance: quarantined, but made
    assert done["result"]["quarantined"] == int(datasets[0]["status"] == "quarantined")
