"""The adapter registry through /api/v1/adapters, with a scripted model that records
which adapter each answer asked for: register, gate, approve, activate, rollback,
deactivate, canary, a tampered file, the manifest, and refusals."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from mongars.adapters import store
from mongars.adapters.selection import canary_bucket
from mongars.llm.base import ChatMessage, GenerationParams, StreamItem
from mongars.training.spec import runs_root
from tests.adapters.factory import GOOD_METRICS, add_run
from tests.conftest import Api
from tests.fakes import ScriptedLLM


class AdapterAwareLLM(ScriptedLLM):
    """Scripted answers; remembers the adapter each one was asked with."""

    loads_adapters = True

    def __init__(self) -> None:
        super().__init__()
        self.adapters: list[str | None] = []
        self.loaded: list[str | None] = []

    async def use_adapter(self, sha256: str | None) -> float:
        self.loaded.append(sha256)
        return 0.0

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        self.adapters.append(params.adapter)
        async for item in super().stream(messages, params):
            yield item


@pytest.fixture
def setup(api_factory: Any) -> tuple[Api, dict[str, str], AdapterAwareLLM]:
    llm = AdapterAwareLLM()
    api = api_factory(llm, rate_limits={"chat": ""})  # the canary test sends 45+ chats
    return api, api.setup_admin(), llm


def register(api: Api, admin: dict[str, str], content: bytes, **kw: Any) -> dict[str, Any]:
    run_id = add_run(api.runtime, api.client.portal, content, **kw)
    r = api.client.post("/api/v1/adapters/register", json={"run_id": run_id}, headers=admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


def chat(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    r = api.client.post("/api/v1/conversation/chat", json={"message": "hi"}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def post(api: Api, admin: dict[str, str], path: str, **body: Any) -> Any:
    return api.client.post(f"/api/v1/adapters{path}", json=body, headers=admin)


def test_a_version_goes_from_candidate_to_serving_and_back(setup: Any) -> None:
    api, admin, llm = setup
    v1 = register(api, admin, b"adapter one")
    assert v1["state"] == "candidate"
    assert v1["sha256"] == hashlib.sha256(b"adapter one").hexdigest()
    assert [g["code"] for g in v1["gate"]] == ["dataset_missing"]  # the factory's run has none
    # The file is in the content-addressed store, immutable.
    path = store.adapter_path(api.runtime.settings.data_dir, v1["sha256"])
    assert path.read_bytes() == b"adapter one"
    # Registering the same run again is the same version.
    again = post(api, admin, "/register", run_id=v1["run_id"])
    assert again.status_code == 201 and again.json()["id"] == v1["id"]

    assert chat(api, admin)["adapter_version"] is None  # nothing active: the base model
    assert post(api, admin, f"/{v1['id']}/activate").status_code == 409  # not approved
    r = post(api, admin, f"/{v1['id']}/approve", note="looks good")
    assert r.status_code == 200 and r.json()["state"] == "approved"
    assert r.json()["decided_by"] == "admin" and r.json()["note"] == "looks good"
    r = post(api, admin, f"/{v1['id']}/activate")
    assert r.status_code == 200, r.text
    assert r.json()["active"]["id"] == v1["id"] and r.json()["generation"] >= 1
    assert llm.loaded[-1] == v1["sha256"]  # loaded here at once, before any answer

    answer = chat(api, admin)
    assert answer["adapter_version"] == v1["id"] and llm.adapters[-1] == v1["sha256"]
    # The turn records it: history, thread messages, export.
    history = api.client.get("/api/v1/conversation/history", headers=admin).json()
    assert history[0]["adapter_version"] == v1["id"]
    thread = api.client.get(
        f"/api/v1/threads/{answer['session_id']}/messages", headers=admin
    ).json()
    assert thread["items"][-1]["adapter_version"] == v1["id"]
    export = api.client.get("/api/v1/memory/export", headers=admin).json()
    assert {t["adapter_version"] for t in export["turns"]} == {None, v1["id"]}

    # A second version, then roll back twice: v2 -> v1 -> base.
    v2 = register(api, admin, b"adapter two")
    post(api, admin, f"/{v2['id']}/approve")
    assert post(api, admin, f"/{v2['id']}/activate").json()["active"]["id"] == v2["id"]
    assert api.client.get(f"/api/v1/adapters/{v1['id']}", headers=admin).json()["state"] == (
        "retired"
    )
    assert chat(api, admin)["adapter_version"] == v2["id"]
    r = post(api, admin, "/rollback", note="users dislike it")
    assert r.json()["active"]["id"] == v1["id"]
    assert chat(api, admin)["adapter_version"] == v1["id"]
    r = post(api, admin, "/rollback")
    assert r.json()["active"] is None
    assert chat(api, admin)["adapter_version"] is None and llm.adapters[-1] is None
    r = post(api, admin, "/rollback")
    assert r.status_code == 409 and r.json()["code"] == "adapter_state"

    changes = api.client.get("/api/v1/adapters/changes", headers=admin).json()
    assert [c["action"] for c in changes] == ["rollback", "rollback", "activate", "activate"]
    audit = api.client.get("/api/v1/admin/audit", headers=admin).json()["items"]
    actions = [a["action"] for a in audit]
    assert "adapter.approve" in actions and actions.count("adapter.rollback") == 2


def test_the_manifest_follows_the_pointer(setup: Any) -> None:
    api, admin, _ = setup
    data_dir = api.runtime.settings.data_dir
    v1 = register(api, admin, b"manifest one")
    post(api, admin, f"/{v1['id']}/approve")
    post(api, admin, f"/{v1['id']}/activate")
    manifest = json.loads((data_dir / "adapters" / store.MANIFEST).read_text())
    assert manifest["current"]["sha256"] == v1["sha256"]
    assert manifest["current"]["path"].endswith(f"{v1['sha256']}/adapter.gguf")
    assert manifest["history"][0]["action"] == "activate" and manifest["updated_at"]
    post(api, admin, "/deactivate", note="off for now")
    manifest = json.loads((data_dir / "adapters" / store.MANIFEST).read_text())
    assert manifest["current"] is None
    assert [h["action"] for h in manifest["history"]] == ["deactivate", "activate"]
    # No temporary file is left beside it.
    assert not [p for p in (data_dir / "adapters").iterdir() if p.name.startswith(".")]


def test_a_tampered_file_is_refused(setup: Any) -> None:
    api, admin, _ = setup
    v1 = register(api, admin, b"honest weights")
    post(api, admin, f"/{v1['id']}/approve")
    store.adapter_path(api.runtime.settings.data_dir, v1["sha256"]).write_bytes(b"evil weights")
    r = post(api, admin, f"/{v1['id']}/activate")
    assert r.status_code == 409 and r.json()["code"] == "adapter_damaged"
    assert "damaged" in r.json()["detail"] and v1["sha256"] in r.json()["detail"]
    assert api.client.get("/api/v1/adapters/active", headers=admin).json()["active"] is None
    # A run whose file no longer matches what the run recorded is refused too.
    run_id = add_run(api.runtime, api.client.portal, b"original")
    run_file = runs_root(api.runtime.settings) / run_id / "adapter.gguf"
    run_file.write_bytes(b"swapped")
    r = post(api, admin, "/register", run_id=run_id)
    assert r.status_code == 409 and r.json()["code"] == "adapter_damaged"


def test_gate_reasons_and_auto_activation(
    api_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mongars.adapters.registry import AdapterRegistry

    async def good_dataset(self: Any, dataset_id: str) -> tuple[list[float], bool]:
        return [0.9] * 20, False

    monkeypatch.setattr(AdapterRegistry, "_dataset_figures", good_dataset)
    llm = AdapterAwareLLM()
    api = api_factory(llm, training={"auto_activate": True})
    admin = api.setup_admin()
    bad = register(
        api,
        admin,
        b"worse",
        metrics={**GOOD_METRICS, "perplexity_ratio": 0.99, "regression_passed": 3},
    )
    codes = {g["code"]: g for g in bad["gate"]}
    assert set(codes) == {"perplexity_not_improved", "regression_failed"}
    assert codes["perplexity_not_improved"]["figure"] == 0.99
    assert codes["perplexity_not_improved"]["limit"] == 0.95
    assert bad["state"] == "candidate"  # a human must decide
    good = register(api, admin, b"better")
    assert good["gate"] == [] and good["state"] == "active"  # the policy allowed it
    assert good["decided_by"] == "policy"
    assert chat(api, admin)["adapter_version"] == good["id"]


def test_canary_answers_its_share(setup: Any) -> None:
    api, admin, _ = setup
    v1 = register(api, admin, b"stable")
    v2 = register(api, admin, b"candidate")
    post(api, admin, f"/{v1['id']}/approve")
    post(api, admin, f"/{v1['id']}/activate")
    r = post(api, admin, f"/{v2['id']}/canary", share=0.5)
    assert r.status_code == 200 and r.json()["canary"]["id"] == v2["id"]
    assert r.json()["canary_share"] == 0.5
    versions = [chat(api, admin)["adapter_version"] for _ in range(40)]
    assert set(versions) == {v1["id"], v2["id"]}  # 40 turns at 50 %: both (p = 2e-12)
    compare = api.client.get("/api/v1/adapters/compare", headers=admin).json()
    turns = {v["version"]: v["turns"] for v in compare["versions"]}
    assert turns[v1["id"]] + turns[v2["id"]] == 40 and compare["canary"] == v2["id"]
    figures = next(v for v in compare["versions"] if v["version"] == v2["id"])
    low, high = figures["thumbs_down_ci"]
    assert low == 0.0 and 0 < high < 0.5  # no thumbs down yet: an interval, not a zero
    assert post(api, admin, "/canary/stop").json()["canary"] is None
    assert {chat(api, admin)["adapter_version"] for _ in range(5)} == {v1["id"]}
    # Rejecting a running canary stops it.
    post(api, admin, f"/{v2['id']}/canary", share=0.2)
    post(api, admin, f"/{v2['id']}/reject", note="no")
    assert api.client.get("/api/v1/adapters/active", headers=admin).json()["canary"] is None


def test_the_canary_split_holds_within_statistical_bounds() -> None:
    n, share = 20_000, 0.1
    hits = sum(canary_bucket(uuid.uuid4().hex) < share for _ in range(n))
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(hits - n * share) < 4 * sigma, hits
    # Stable: the same generation id always lands in the same bucket.
    assert canary_bucket("gen-1") == canary_bucket("gen-1")


def test_refusals(setup: Any, api_factory: Any) -> None:
    api, admin, _ = setup
    user = api.create_user(admin, "bob")
    assert api.client.get("/api/v1/adapters", headers=user).status_code == 403
    assert post(api, user, "/rollback").status_code == 403
    assert api.client.get("/api/v1/adapters/999", headers=admin).status_code == 404
    assert api.client.get("/api/v1/adapters/abc", headers=admin).status_code == 422
    assert api.client.get("/api/v1/adapters/0", headers=admin).status_code == 422
    assert post(api, admin, "/register", run_id="nope").status_code == 404
    assert post(api, admin, "/register", run_id="").status_code == 422
    assert post(api, admin, "/deactivate").status_code == 409
    assert post(api, admin, "/canary/stop").status_code == 409
    v1 = register(api, admin, b"x")
    assert post(api, admin, f"/{v1['id']}/canary", share=1.5).status_code == 422
    assert post(api, admin, f"/{v1['id']}/approve", note="n" * 3000).status_code == 422
    post(api, admin, f"/{v1['id']}/approve")
    post(api, admin, f"/{v1['id']}/activate")
    r = post(api, admin, f"/{v1['id']}/reject")
    assert r.status_code == 409 and "roll back or deactivate" in r.json()["detail"]
    assert post(api, admin, f"/{v1['id']}/activate").status_code == 409  # already active
    assert post(api, admin, f"/{v1['id']}/approve").status_code == 409
    page = api.client.get("/api/v1/adapters?limit=1", headers=admin).json()
    assert len(page["items"]) == 1 and page["next_before"] is None
    v2 = register(api, admin, b"y")
    page = api.client.get("/api/v1/adapters?limit=1", headers=admin).json()
    assert page["items"][0]["id"] == v2["id"] and page["next_before"] == v2["id"]
    rest = api.client.get(f"/api/v1/adapters?limit=1&before={v2['id']}", headers=admin).json()
    assert rest["items"][0]["id"] == v1["id"]
    only = api.client.get("/api/v1/adapters?state=active", headers=admin).json()["items"]
    assert [v["id"] for v in only] == [v1["id"]]
    assert api.client.get("/api/v1/adapters?state=bogus", headers=admin).status_code == 422


def test_pruning_is_explicit_and_keeps_what_can_serve(setup: Any) -> None:
    api, admin, _ = setup
    data_dir = api.runtime.settings.data_dir
    versions = [register(api, admin, f"weights {i}".encode()) for i in range(4)]
    for v in versions[:3]:  # v0, v1 retired in turn; v2 active
        post(api, admin, f"/{v['id']}/approve")
        post(api, admin, f"/{v['id']}/activate")
    post(api, admin, f"/{versions[3]['id']}/reject")
    r = post(api, admin, "/prune", keep=1)
    assert r.status_code == 200, r.text
    # The rejected one and the oldest retired one; the newest retired (v1) is kept.
    assert sorted(r.json()["pruned"]) == [versions[0]["id"], versions[3]["id"]]
    for v, exists in zip(versions, (False, True, True, False), strict=True):
        assert store.adapter_path(data_dir, v["sha256"]).exists() == exists
    state = api.client.get(f"/api/v1/adapters/{versions[0]['id']}", headers=admin).json()
    assert state["state"] == "pruned"
    # Rolling back twice would reach the pruned v0: refused, clearly.
    assert post(api, admin, "/rollback").json()["active"]["id"] == versions[1]["id"]
    r = post(api, admin, "/rollback")
    assert r.status_code == 409 and "pruned" in r.json()["detail"]
    assert post(api, admin, "/prune", keep=-1).status_code == 422
