"""A real adapter through the real embedded model: approve and activate it, and the
next greedy answer differs from the base model's and names its version; roll back,
and the answer is the base's again, exactly. The swap itself is measured too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mongars.llm.llamacpp import LlamaCppProvider
from tests.adapters.factory import add_run

pytestmark = [pytest.mark.slow, pytest.mark.model]
QUESTION = "What colour are the doors in Quenbrook?"


def ask(api: Any, headers: dict[str, str], session: str) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/conversation/chat",
        json={"message": QUESTION, "session_id": session},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_an_approved_adapter_answers_and_a_rollback_restores_the_base(
    api_factory: Any, model_path: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    # The data dir of api_factory's settings: adapters are read from there.
    provider = LlamaCppProvider(str(model_path), tmp_path / "data", 2048, threads=2)
    api = api_factory(
        provider,
        llm={"temperature": 0.0, "max_tokens": 24, "seed": 0},
        memory={"enabled": False},
        persona={"enabled": False},
    )
    admin = api.setup_admin()
    base = ask(api, admin, "s1")  # each in a new thread: the same prompt every time
    assert base["adapter_version"] is None

    run_id = add_run(api.runtime, api.client.portal, tiny_adapter)
    r = api.client.post("/api/v1/adapters/register", json={"run_id": run_id}, headers=admin)
    version = r.json()
    assert r.status_code == 201 and version["state"] == "candidate"
    api.client.post(f"/api/v1/adapters/{version['id']}/approve", json={}, headers=admin)
    r = api.client.post(f"/api/v1/adapters/{version['id']}/activate", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert provider.lora.applied == version["sha256"]  # swapped in place at activation
    assert provider.lora.last_swap_s is not None and provider.lora.last_swap_s < 0.5

    tuned = ask(api, admin, "s2")
    assert tuned["adapter_version"] == version["id"]
    assert tuned["response"] != base["response"], (tuned["response"], base["response"])
    history = api.client.get("/api/v1/conversation/history?limit=5", headers=admin).json()
    assert {h["adapter_version"] for h in history} == {None, version["id"]}

    r = api.client.post("/api/v1/adapters/rollback", json={"note": "test"}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is None
    assert provider.lora.applied is None
    again = ask(api, admin, "s3")
    assert again["adapter_version"] is None
    assert again["response"] == base["response"]
