"""Dataset curation and governance through the API: consent, policy, scrubbing,
the held-out split by conversation, forgetting, retention, export, admin only."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mongars.db.base import utcnow
from tests.conftest import Api
from tests.fakes import ScriptedLLM

D = "/api/v1/training/datasets"
CHAT = "/api/v1/conversation/chat"
LOOSE = {"min_confidence": 0.0, "min_records": 1}  # the scripted answers' confidence is 0.5


@pytest.fixture
def tapi(api_factory: Callable[..., Api]) -> Api:
    return api_factory(provider=ScriptedLLM(replies=["Paris is the capital of France."]))


def chat(api: Api, who: dict[str, str], message: str, session: str = "s1") -> int:
    r = api.client.post(CHAT, json={"message": message, "session_id": session}, headers=who)
    assert r.status_code == 200, r.text
    return int(r.json()["turn_id"])


def consent(api: Api, who: dict[str, str], allow: bool | None) -> None:
    r = api.client.put("/api/v1/profile", json={"allow_training": allow}, headers=who)
    assert r.status_code == 200, r.text


def rate(api: Api, who: dict[str, str], turn_id: int, **body: Any) -> None:
    r = api.client.post(f"/api/v1/conversation/turns/{turn_id}/feedback", json=body, headers=who)
    assert r.status_code in (200, 201), r.text


def curate(api: Api, who: dict[str, str], **policy: Any) -> dict[str, Any]:
    r = api.client.post(D, json={"policy": policy}, headers=who)
    assert r.status_code == 201, r.text
    return dict(r.json())


def records(api: Api, dataset_id: str) -> list[dict[str, Any]]:
    path = Path(api.runtime.settings.data_dir) / "datasets" / dataset_id / "data.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def users(api: Api) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    admin = api.setup_admin()
    api.create_user(admin, "alice")
    api.create_user(admin, "bob")
    return admin, api.login("alice"), api.login("bob")


def test_only_consenting_users_turns_and_the_policy(tapi: Api) -> None:
    admin, alice, bob = users(tapi)
    consent(tapi, alice, True)
    up = chat(tapi, alice, "What is the capital of France?")
    down = chat(tapi, alice, "And of Spain?")
    fixed = chat(tapi, alice, "And of Italy?")
    chat(tapi, bob, "Bob's question, never curated", session="bob")  # bob has not consented
    rate(tapi, alice, up, rating="up")
    rate(tapi, alice, down, rating="down")
    rate(tapi, alice, fixed, rating="down", correction="Rome is the capital of Italy.")

    strict = curate(tapi, admin, include_unrated=False, min_records=1)
    assert strict["status"] == "approved" and strict["records"] == 2
    texts = [r["messages"] for r in records(tapi, strict["id"])]
    assert [m[1]["content"] for m in texts] == ["What is the capital of France?", "And of Italy?"]
    assert texts[1][2] == {"role": "assistant", "content": "Rome is the capital of Italy."}
    assert all(m[0]["role"] == "system" for m in texts)
    manifest = json.loads(
        (
            Path(tapi.runtime.settings.data_dir) / "datasets" / strict["id"] / "manifest.json"
        ).read_text()
    )
    assert manifest["sha256"] == strict["sha256"] and manifest["records"] == 2
    assert manifest["governance"]["verdict"] == "approved"
    sources = manifest["record_sources"]
    assert [s["turn_id"] for s in sources] == [up, fixed]
    assert [s["target"] for s in sources] == ["answer", "correction"]
    assert all(s["user"] != "2" and len(s["user"]) == 16 for s in sources)  # hashed
    assert all(s["scrubber_version"] == manifest["scrubber_version"] for s in sources)


def test_default_consent_is_off(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    chat(tapi, alice, "hello")
    assert curate(tapi, admin, **LOOSE)["records"] == 0  # nobody consented


def test_the_default_consent_setting_and_an_explicit_no(
    api_factory: Callable[..., Api],
) -> None:
    on = api_factory(provider=ScriptedLLM(replies=["Sure."]), training={"default_consent": True})
    admin, alice, _ = users(on)
    chat(on, alice, "hello")
    assert curate(on, admin, **LOOSE)["records"] == 1
    consent(on, alice, False)  # an explicit "no" beats the default
    assert curate(on, admin, **LOOSE)["records"] == 0


def test_too_few_records_quarantines_and_training_is_refused(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    chat(tapi, alice, "one question")
    d = curate(tapi, admin, min_confidence=0.0, min_records=5)
    assert d["status"] == "quarantined"
    assert [v["code"] for v in d["violations"]] == ["too_few_records"]
    r = tapi.client.post("/api/v1/training/runs", json={"dataset_id": d["id"]}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "dataset_not_trainable"
    assert "quarantined" in r.json()["detail"]


def test_personal_data_is_scrubbed(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    chat(tapi, alice, "Mail me at alice.smith@example.org or ask bob about it")
    d = curate(tapi, admin, **LOOSE)
    assert d["status"] == "approved", d["violations"]
    text = records(tapi, d["id"])[0]["messages"][1]["content"]
    assert "alice.smith@example.org" not in text and "example.org" not in text
    assert "bob" not in text.lower()  # another registered user's name


def test_forgetting_flags_the_dataset_and_leaves_future_ones(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    keep = chat(tapi, alice, "a question to keep", session="keep")
    gone = chat(tapi, alice, "a question to forget", session="gone")
    d = curate(tapi, admin, **LOOSE)
    assert d["records"] == 2 and not d["flagged"]
    r = tapi.client.delete("/api/v1/threads/gone", headers=alice)  # forget the conversation
    assert r.status_code == 204, r.text
    again = tapi.client.get(f"{D}/{d['id']}", headers=admin).json()
    assert again["flagged"] and again["forgotten_records"] == 1
    listed = tapi.client.get(D, headers=admin).json()["items"]
    assert [x["flagged"] for x in listed] == [True]
    r = tapi.client.post("/api/v1/training/runs", json={"dataset_id": d["id"]}, headers=admin)
    assert r.status_code == 409 and "forgotten" in r.json()["detail"]
    fresh = curate(tapi, admin, **LOOSE)
    assert fresh["records"] == 1 and not fresh["flagged"]
    sources = json.loads(
        (
            Path(tapi.runtime.settings.data_dir) / "datasets" / fresh["id"] / "manifest.json"
        ).read_text()
    )["record_sources"]
    assert [s["turn_id"] for s in sources] == [keep] and gone != keep


def test_consent_withdrawn_quarantines(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    chat(tapi, alice, "hello there")
    d = curate(tapi, admin, **LOOSE)
    assert d["status"] == "approved"
    consent(tapi, alice, False)
    after = tapi.client.get(f"{D}/{d['id']}", headers=admin).json()
    assert after["status"] == "quarantined"
    assert [v["code"] for v in after["violations"]] == ["consent_withdrawn"]
    consent(tapi, alice, True)  # a later "yes" does not clear a verdict
    assert tapi.client.get(f"{D}/{d['id']}", headers=admin).json()["status"] == "quarantined"


def test_held_out_split_is_by_conversation(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    for conv in range(6):
        for i in range(3):
            chat(tapi, alice, f"question {i} of conversation {conv}", session=f"c{conv}")
    d = curate(tapi, admin, held_out_share=0.34, **LOOSE)
    rows = records(tapi, d["id"])
    splits: dict[str, set[str]] = {}
    for row in rows:
        splits.setdefault(row["conversation"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())  # never split inside a conversation
    held = [c for c, s in splits.items() if s == {"held_out"}]
    assert len(held) == 2 and d["held_out"] == 6


def test_export_delete_pagination_and_admin_only(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    chat(tapi, alice, "Grüße aus Köln 🌍")
    ids = [curate(tapi, admin, **LOOSE)["id"] for _ in range(3)]
    assert tapi.client.get(D, headers=alice).status_code == 403
    assert tapi.client.post(D, json={}, headers=alice).status_code == 403
    page = tapi.client.get(D, params={"limit": 2}, headers=admin).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = tapi.client.get(D, params={"cursor": page["next_cursor"]}, headers=admin).json()
    assert {x["id"] for x in page["items"] + rest["items"]} == set(ids)
    assert rest["next_cursor"] is None
    assert tapi.client.get(D, params={"cursor": "%%%"}, headers=admin).status_code == 422
    r = tapi.client.get(f"{D}/{ids[0]}/export", headers=admin)
    assert r.status_code == 200
    assert json.loads(r.text.splitlines()[0])["messages"][1]["content"] == "Grüße aus Köln 🌍"
    assert tapi.client.delete(f"{D}/{ids[0]}", headers=admin).status_code == 204
    assert tapi.client.get(f"{D}/{ids[0]}", headers=admin).status_code == 404
    assert not (Path(tapi.runtime.settings.data_dir) / "datasets" / ids[0]).exists()
    assert tapi.client.delete(f"{D}/{ids[0]}", headers=admin).status_code == 404
    bad = tapi.client.post(D, json={"policy": {"min_confidence": 2}}, headers=admin)
    assert bad.status_code == 422
    bad = tapi.client.post(D, json={"policy": {"surprise": 1}}, headers=admin)
    assert bad.status_code == 422


def test_retention_deletes_old_datasets(tapi: Api) -> None:
    admin, alice, _ = users(tapi)
    consent(tapi, alice, True)
    chat(tapi, alice, "hello")
    d = curate(tapi, admin, **LOOSE)
    system = tapi.runtime.training

    async def age() -> int:
        from mongars.training.models import Dataset

        async with tapi.runtime.sessions() as s:
            row = await s.get(Dataset, d["id"])
            row.created_at = utcnow() - timedelta(days=400)
            await s.commit()
        return await system.datasets.enforce_retention()

    assert tapi.client.portal.call(age) == 1  # type: ignore[union-attr]
    assert tapi.client.get(f"{D}/{d['id']}", headers=admin).status_code == 404


def test_forgetting_a_memory_keeps_its_turn_out(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["Noted."]), embedder=embedder, memory={"enabled": True}
    )
    admin, alice, _ = users(api)
    consent(api, alice, True)
    kept = chat(api, alice, "my favourite colour is green", session="a")
    forgotten = chat(api, alice, "my locker code is 4512", session="b")
    before = curate(api, admin, **LOOSE)
    assert before["records"] == 2
    memories = api.client.get("/api/v1/memory", headers=alice).json()["items"]
    target = next(m for m in memories if m["turn_id"] == forgotten)
    assert api.client.delete(f"/api/v1/memory/{target['id']}", headers=alice).status_code == 204
    assert api.client.get(f"{D}/{before['id']}", headers=admin).json()["flagged"]
    after = curate(api, admin, **LOOSE)
    sources = json.loads(
        (
            Path(api.runtime.settings.data_dir) / "datasets" / after["id"] / "manifest.json"
        ).read_text()
    )["record_sources"]
    assert [s["turn_id"] for s in sources] == [kept]
