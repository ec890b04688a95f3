"""The memory API (/api/v1/memory) through real HTTP, with the real MiniLM embedder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mongars.apikeys.service import hash_key
from mongars.memory.repository import MemoryRepository
from tests.conftest import Api
from tests.fakes import ScriptedLLM

M = "/api/v1/memory"
LOCKER = "My locker code at the Riverside gym is 4512."
PARAPHRASE = "where do I work out"  # no word in common with LOCKER: only meaning matches


@pytest.fixture
def mem_api(api_factory: Callable[..., Api], embedder: Any) -> Api:
    return api_factory(
        provider=ScriptedLLM(replies=["Noted."]), embedder=embedder, memory={"enabled": True}
    )


def note(api: Api, who: dict[str, str], text: str) -> dict[str, Any]:
    r = api.client.post(M, json={"text": text}, headers=who)
    assert r.status_code == 201, r.text
    return dict(r.json())


def search(api: Api, who: dict[str, str], q: str, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get(f"{M}/search", params={"q": q, **params}, headers=who)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def call(api: Api, fn: Callable[..., Any], *args: Any) -> Any:
    return api.client.portal.call(fn, *args)  # type: ignore[union-attr]


def text_ids(api: Api, user_id: int, q: str) -> list[int]:
    """Ids the full-text index alone returns (FTS5 on SQLite, tsvector on PostgreSQL)."""

    async def go() -> list[int]:
        async with api.runtime.sessions() as s:
            return await MemoryRepository(s).text_search(user_id, q, 50)

    return list(call(api, go))


def dense_ids(api: Api, user_id: int, q: str) -> list[int]:
    """Ids the dense path alone returns (the in-process index on SQLite, pgvector on
    PostgreSQL): MemoryService._dense is the one place search picks between them."""
    service = api.runtime.memory.service

    async def go() -> list[int]:
        vector = (await service.embedder.embed([q]))[0]
        async with api.runtime.sessions() as s:
            return list(await service._dense(MemoryRepository(s), user_id, vector))

    return list(call(api, go))


def user_id(api: Api, who: dict[str, str]) -> int:
    r = api.client.get(f"{M}/export", headers=who)
    username = r.json()["account"]["username"]

    async def go() -> int:
        from mongars.auth.repository import UserRepository

        async with api.runtime.sessions() as s:
            user = await UserRepository(s).by_username(username)
            assert user is not None
            return user.id

    return int(call(api, go))


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_forgotten_memory_is_gone_from_full_text_and_dense_recall(
    api_factory: Callable[..., Api], embedder: Any, backend: dict[str, Any]
) -> None:
    api = api_factory(embedder=embedder, memory={"enabled": True}, **backend)
    alice = api.setup_admin("alice")
    uid = user_id(api, alice)
    kept = note(api, alice, "I am allergic to peanuts.")
    locker = note(api, alice, LOCKER)
    assert locker["indexed"] is True  # a note is embedded before the response
    # both paths find it: full-text by its words, dense by a paraphrase sharing none
    assert locker["id"] in text_ids(api, uid, "locker code")
    assert text_ids(api, uid, PARAPHRASE) == []
    assert dense_ids(api, uid, PARAPHRASE)[0] == locker["id"]
    assert search(api, alice, PARAPHRASE, k=1)[0]["id"] == locker["id"]  # so: dense
    assert search(api, alice, "locker code")[0]["id"] == locker["id"]
    assert api.client.delete(f"{M}/{locker['id']}", headers=alice).status_code == 204
    assert locker["id"] not in text_ids(api, uid, "locker code")
    assert dense_ids(api, uid, PARAPHRASE) == [kept["id"]]  # the index dropped it
    for q in (PARAPHRASE, "locker code", "Riverside gym 4512"):
        assert all(h["id"] != locker["id"] for h in search(api, alice, q, k=50)), q
    assert api.client.get(f"{M}/{locker['id']}", headers=alice).status_code == 404
    assert api.client.delete(f"{M}/{locker['id']}", headers=alice).status_code == 404
    assert [m["id"] for m in api.client.get(M, headers=alice).json()["items"]] == [kept["id"]]
    assert search(api, alice, "peanut allergy")[0]["id"] == kept["id"]


def test_notes_are_listed_newest_first_with_keyset_pages_and_kind_filter(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    ids = [note(mem_api, alice, f"Note number {n} about topic {n}.")["id"] for n in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = mem_api.client.get(M, params=params, headers=alice).json()
        seen += [m["id"] for m in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3
    item = mem_api.client.get(M, params={"limit": 1}, headers=alice).json()["items"][0]
    assert set(item) == {
        "id",
        "kind",
        "text",
        "created_at",
        "updated_at",
        "thread_id",
        "turn_id",
        "subject",
        "valid_from",
        "invalid_at",
        "source_ids",
        "indexed",
    }
    assert item["kind"] == "note" and item["text"] == "Note number 4 about topic 4."
    assert mem_api.client.get(M, params={"kind": "turn"}, headers=alice).json()["items"] == []
    notes = mem_api.client.get(M, params={"kind": "note"}, headers=alice).json()["items"]
    assert len(notes) == 5
    one = mem_api.client.get(f"{M}/{ids[2]}", headers=alice).json()
    assert one["text"] == "Note number 2 about topic 2." and one["source_ids"] == []


def test_edit_is_found_by_full_text_at_once_and_re_embedded_by_the_indexer(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    uid = user_id(mem_api, alice)
    m = note(mem_api, alice, "My sister lives in Montreal.")
    r = mem_api.client.patch(
        f"{M}/{m['id']}",
        json={"text": "  My sister moved to Vancouver last spring.  "},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["text"] == "My sister moved to Vancouver last spring."
    assert edited["indexed"] is False  # re-embedded after the response, by the indexer
    assert edited["updated_at"] > m["updated_at"]
    assert m["id"] in text_ids(mem_api, uid, "Vancouver")  # full-text sees the new words now
    assert text_ids(mem_api, uid, "Montreal") == []  # and no longer the old ones
    # the indexer re-embeds it; then semantic recall finds it by meaning
    wait_for(lambda: mem_api.client.get(f"{M}/{m['id']}", headers=alice).json()["indexed"])
    hits = search(mem_api, alice, "which city is my sibling in now", k=1)
    assert hits[0]["id"] == m["id"] and "Vancouver" in hits[0]["text"]


def test_search_is_hybrid_scored_and_thread_scoped(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    chat = "/api/v1/conversation/chat"
    for text, thread in [
        ("I grow tomatoes on my balcony.", "garden"),
        ("My car is a blue Volvo.", "cars"),
    ]:
        r = mem_api.client.post(chat, json={"message": text, "session_id": thread}, headers=alice)
        assert r.status_code == 200, r.text

    def all_indexed() -> bool:
        items = mem_api.client.get(M, headers=alice).json()["items"]
        return len(items) == 2 and all(m["indexed"] for m in items)

    wait_for(all_indexed)
    hits = search(mem_api, alice, "vegetables I grow", k=5)
    assert hits[0]["kind"] == "turn" and "tomatoes" in hits[0]["text"]
    assert hits[0]["thread_id"] == "garden" and hits[0]["turn_id"] is not None
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    scoped = search(mem_api, alice, "vegetables I grow", k=5, thread_id="cars")
    assert [h["thread_id"] for h in scoped] == ["cars"]
    listed = mem_api.client.get(M, params={"thread_id": "garden"}, headers=alice).json()
    assert [m["text"].splitlines()[0] for m in listed["items"]] == [
        "User: I grow tomatoes on my balcony."
    ]


def test_users_cannot_see_or_touch_each_others_memory(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    bob = mem_api.create_user(alice, "bob")
    secret = note(mem_api, alice, "My bank PIN hint is the year my dog Rex was born.")
    mine = note(mem_api, bob, "Bob likes jazz.")
    path = f"{M}/{secret['id']}"
    assert mem_api.client.get(path, headers=bob).status_code == 404
    assert mem_api.client.patch(path, json={"text": "hacked"}, headers=bob).status_code == 404
    assert mem_api.client.delete(path, headers=bob).status_code == 404
    assert [m["id"] for m in mem_api.client.get(M, headers=bob).json()["items"]] == [mine["id"]]
    for q in ("bank PIN hint", "dog Rex", "what is my pet called"):
        assert all(h["id"] != secret["id"] for h in search(mem_api, bob, q, k=100))
    r = mem_api.client.delete(M, params={"confirm": "true"}, headers=bob)
    assert r.json() == {"deleted": 1}
    assert mem_api.client.get(path, headers=alice).json()["text"] == secret["text"]
    export = mem_api.client.get(f"{M}/export", headers=bob).json()
    assert all(m["id"] != secret["id"] for m in export["memories"])
    assert mem_api.client.get(M).status_code == 401


def test_forget_all_needs_confirmation_then_forgets_everything(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    for text in ("I play the cello.", "I was born in Lisbon.", "I dislike olives."):
        note(mem_api, alice, text)
    r = mem_api.client.delete(M, headers=alice)
    assert r.status_code == 400 and r.json()["code"] == "confirmation_required"
    r = mem_api.client.delete(M, params={"confirm": "false"}, headers=alice)
    assert r.status_code == 400
    assert len(mem_api.client.get(M, headers=alice).json()["items"]) == 3
    r = mem_api.client.delete(M, params={"confirm": "true"}, headers=alice)
    assert r.status_code == 200 and r.json() == {"deleted": 3}
    assert mem_api.client.get(M, headers=alice).json() == {"items": [], "next_cursor": None}
    for q in ("cello", "where was I born", "olives"):
        assert search(mem_api, alice, q) == []


def test_bad_input_gets_a_clear_422(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    m = note(mem_api, alice, "A valid note.")
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("post", M, {"json": {"text": ""}}, "must not be empty"),
        ("post", M, {"json": {"text": "   \n "}}, "must not be empty"),
        ("post", M, {"json": {"text": "x" * 8001}}, "at most 8000"),
        ("post", M, {"json": {"text": "nul \x00 here"}}, "NUL"),
        ("post", M, {"json": {}}, "text"),
        ("patch", f"{M}/{m['id']}", {"json": {"text": ""}}, "must not be empty"),
        ("patch", f"{M}/{m['id']}", {"json": {"text": "y" * 8001}}, "at most 8000"),
        ("get", M, {"params": {"cursor": "not-a-cursor"}}, "malformed cursor"),
        ("get", M, {"params": {"limit": 0}}, "limit"),
        ("get", M, {"params": {"kind": "Robert'); DROP"}}, "kind"),
        ("get", f"{M}/search", {"params": {"q": "x", "k": 0}}, "k"),
        ("get", f"{M}/search", {"params": {"q": "x", "k": 101}}, "k"),
        ("get", f"{M}/search", {"params": {"q": "   "}}, "q must be 1 to 2000"),
        ("get", f"{M}/search", {"params": {"q": "a" * 2001}}, "q must be 1 to 2000"),
        ("get", f"{M}/search", {"params": {"q": "a\x00b"}}, "NUL"),
        ("get", f"{M}/search", {"params": {}}, "q"),
        ("get", f"{M}/99999999999", {}, "memory_id"),
    ]
    for method, path, kwargs, message in cases:
        r = getattr(mem_api.client, method)(path, headers=alice, **kwargs)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert message in r.json()["detail"], (path, kwargs, r.json())
    # a cursor from another listing (threads) is refused too
    assert (
        mem_api.client.get(
            M, params={"cursor": "dHwyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwfGFi"}, headers=alice
        ).status_code
        == 422
    )
    assert mem_api.client.get(f"{M}/not-a-number", headers=alice).status_code == 404
    assert mem_api.client.get(f"{M}/424242", headers=alice).status_code == 404
    assert mem_api.client.get(f"{M}/{m['id']}", headers=alice).json()["text"] == "A valid note."


def test_export_holds_everything_about_the_user_and_no_secret(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    bob = mem_api.create_user(alice, "bob")
    chat = "/api/v1/conversation/chat"
    r = mem_api.client.post(
        chat, json={"message": "I love hiking in the Alps.", "session_id": "trips"}, headers=alice
    )
    assert r.status_code == 200
    mem_api.client.post(chat, json={"message": "Bob's secret plan"}, headers=bob)
    note(mem_api, alice, "Remember to call grandma on Sundays.")
    key = mem_api.client.post("/api/v1/keys", json={"name": "laptop"}, headers=alice).json()
    r = mem_api.client.put("/api/v1/profile", json={"tone": "casual"}, headers=alice)
    assert r.status_code == 200, r.text
    wait_for(lambda: len(mem_api.client.get(M, headers=alice).json()["items"]) == 2)

    r = mem_api.client.get(f"{M}/export", headers=alice)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"].startswith('attachment; filename="mongars-export-alice')
    body = r.json()
    assert body["account"]["username"] == "alice" and body["account"]["is_admin"] is True
    assert [t["id"] for t in body["threads"]] == ["trips"]
    assert [t["query"] for t in body["turns"]] == ["I love hiking in the Alps."]
    assert body["turns"][0]["response"] == "Noted." and body["turns"][0]["memory_ids"] == []
    kinds = sorted(m["kind"] for m in body["memories"])
    assert kinds == ["note", "turn"]
    assert all("embedding" not in m for m in body["memories"])
    assert [k["name"] for k in body["api_keys"]] == ["laptop"]
    assert body["api_keys"][0]["prefix"] and "key_hash" not in body["api_keys"][0]
    assert body["persona"] is not None and body["persona"]["explicit"]["tone"] == "casual"
    raw = r.text
    assert "Bob's secret plan" not in raw and "bob" not in raw.lower()
    assert "password" not in raw.lower() and "$argon2" not in raw
    assert hash_key(key["key"]) not in raw and key["key"] not in raw


def test_a_forgotten_turn_memory_stays_forgotten(mem_api: Api) -> None:
    alice = mem_api.setup_admin("alice")
    r = mem_api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "My passport number is X1234567."},
        headers=alice,
    )
    assert r.status_code == 200
    wait_for(lambda: len(mem_api.client.get(M, headers=alice).json()["items"]) == 1)
    mem_api.client.delete(M, params={"confirm": "true"}, headers=alice)
    # the indexer's crash repair (turns without a memory) must not rebuild it
    call(mem_api, mem_api.runtime.memory.service.index_pending)
    assert mem_api.client.get(M, headers=alice).json()["items"] == []
    assert search(mem_api, alice, "passport number") == []


def test_memory_routes_without_the_memory_feature(
    api_factory: Callable[..., Api], tmp_path: Path
) -> None:
    api = api_factory()  # memory disabled: no embedder loaded
    alice = api.setup_admin("alice")
    assert api.client.get(M, headers=alice).json() == {"items": [], "next_cursor": None}
    r = api.client.get(f"{M}/search", params={"q": "x"}, headers=alice)
    assert r.status_code == 400 and r.json()["code"] == "feature_disabled"
    assert api.client.post(M, json={"text": "hi"}, headers=alice).status_code == 400
    assert api.client.get(f"{M}/export", headers=alice).json()["account"]["username"] == "alice"
