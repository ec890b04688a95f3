"""Memory through the chat API: recalled into later prompts, recorded on the turn."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import Api
from tests.fakes import ScriptedLLM


def wait_indexed(api: Api, expected: int, timeout: float = 20.0) -> None:
    from sqlalchemy import func, select

    from mongars.memory.models import Memory

    async def count() -> int:
        async with api.runtime.sessions() as s:
            q = select(func.count()).select_from(Memory).where(Memory.embedded.is_(True))
            return int(await s.scalar(q) or 0)

    deadline = time.time() + timeout
    while api.client.portal.call(count) < expected:  # type: ignore[union-attr]
        assert time.time() < deadline, "memories were not indexed in time"
        time.sleep(0.1)


def test_a_fact_from_an_old_thread_is_recalled_in_a_new_one(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    llm = ScriptedLLM(replies=["Noted."])
    api = api_factory(provider=llm, embedder=embedder, memory={"enabled": True})
    alice = api.setup_admin("alice")
    bob = api.create_user(alice, "bob")
    for text in ["My dog is called Rex and he loves the beach.", "I work as a nurse in Lyon."]:
        api.client.post(
            "/api/v1/conversation/chat", json={"message": text, "session_id": "old"}, headers=alice
        )
    api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "My cat is named Whiskers.", "session_id": "b1"},
        headers=bob,
    )
    wait_indexed(api, 3)
    r = api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "What is the name of my dog?", "session_id": "new"},
        headers=alice,
    )
    body = r.json()
    assert body["memory_ids"], body
    system = llm.calls[-1][0].content
    assert "Rex" in system and "Whiskers" not in system  # recalled, and only alice's
    # the thread's own recent turns are not repeated as memories
    api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "Tell me about Rex again", "session_id": "new"},
        headers=alice,
    )
    wait_indexed(api, 5)
    r = api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "What is the name of my dog?", "session_id": "new"},
        headers=alice,
    )
    system = llm.calls[-1][0].content
    assert "Tell me about Rex again" not in system
    assert system.count("What is the name of my dog?") == 0


def test_turns_missing_a_memory_are_indexed_at_start(
    api_factory: Callable[..., Api], embedder: Any, tmp_path: Any
) -> None:
    # A server without memory stores turns; one with memory on finds and indexes them.
    plain = api_factory()
    alice = plain.setup_admin("alice")
    plain.client.post(
        "/api/v1/conversation/chat", json={"message": "My favourite colour is teal."}, headers=alice
    )
    data_dir = plain.runtime.settings.data_dir
    plain.client.__exit__(None, None, None)
    api = api_factory(embedder=embedder, memory={"enabled": True}, data_dir=data_dir)
    wait_indexed(api, 1)

    async def search() -> list[Any]:
        return await api.runtime.memory.service.search(1, "favourite colour", k=1)

    hits = api.client.portal.call(search)  # type: ignore[union-attr]
    assert hits and "teal" in hits[0].text


def test_deleting_a_thread_forgets_what_was_remembered_from_it(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["Noted."]), embedder=embedder, memory={"enabled": True}
    )
    headers = api.setup_admin()
    api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "My locker code is 4471.", "session_id": "secret"},
        headers=headers,
    )
    wait_indexed(api, 1)
    hits = api.client.get("/api/v1/memory/search?q=locker code", headers=headers).json()["items"]
    assert hits and "4471" in hits[0]["text"]
    assert api.client.delete("/api/v1/threads/secret", headers=headers).status_code == 204
    hits = api.client.get("/api/v1/memory/search?q=locker code", headers=headers).json()["items"]
    assert all("4471" not in h["text"] for h in hits)
    listed = api.client.get("/api/v1/memory", headers=headers).json()["items"]
    assert listed == []
