"""Hybrid recall on SQLite and PostgreSQL with the real MiniLM model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mongars.auth.service import AuthService
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.db.fulltext import query_terms
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory
from mongars.settings import AuthSettings

T0 = datetime(2023, 5, 1, tzinfo=UTC)
FACTS = [
    "Caroline: I went to the LGBTQ support group yesterday and it was powerful.",
    "Melanie: I painted a sunrise over the lake last week.",
    "Caroline: I am researching adoption agencies for my future family.",
    "Melanie: My kids love camping in the mountains every summer.",
    "Caroline: I moved here from Sweden four years ago.",
]


@pytest.fixture(autouse=True)
def _migrated(database_url: str) -> None:
    migrate.upgrade(database_url)  # outside any event loop (Alembic runs its own)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _setup(url: str, embedder: Any) -> tuple[Any, MemoryService, int, int]:
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    async with unit_of_work(sessions) as s:
        auth = AuthService(s, AuthSettings(), "x")
        alice = await auth.create_user("alice", "password123", is_admin=False)
        bob = await auth.create_user("bob", "password123", is_admin=False)
    return engine, MemoryService(sessions, embedder), alice.id, bob.id


def test_hybrid_search_finds_the_right_memory_and_never_another_users(
    database_url: str, embedder: Any
) -> None:
    async def scenario() -> None:
        engine, memory, alice, bob = await _setup(database_url, embedder)
        await memory.add(alice, [NewMemory(t, T0 + timedelta(days=i)) for i, t in enumerate(FACTS)])
        await memory.add(bob, [NewMemory("Bob: I painted my kitchen and went camping.", T0)])
        cases = {
            "When did Caroline go to the support group?": FACTS[0],
            "What did Melanie paint?": FACTS[1],
            "Is Caroline thinking about adopting children?": FACTS[2],
            "Where do the kids go in summer?": FACTS[3],
            "Which country is Caroline originally from?": FACTS[4],
        }
        for question, expected in cases.items():
            hits = await memory.search(alice, question, k=2)
            assert hits[0].text == expected, (question, [h.text for h in hits])
        for question in ["painted kitchen camping", "Bob"]:
            assert all("Bob" not in h.text for h in await memory.search(alice, question, k=10))
        assert [h.text for h in await memory.search(bob, "camping", k=5)] == [
            "Bob: I painted my kitchen and went camping."
        ]
        await engine.dispose()

    run(scenario())


def test_pending_memories_are_indexed_then_found(database_url: str, embedder: Any) -> None:
    async def scenario() -> None:
        engine, memory, alice, _ = await _setup(database_url, embedder)
        await memory.add(alice, [NewMemory("I keep bees on the roof of my building.")], embed=False)
        assert await memory.index_pending() == 1
        hits = await memory.search(alice, "beekeeping hobby", k=3)
        assert hits and "bees" in hits[0].text
        assert await memory.index_pending() == 0
        await engine.dispose()

    run(scenario())


def test_search_handles_hostile_and_empty_queries(database_url: str, embedder: Any) -> None:
    async def scenario() -> None:
        engine, memory, alice, _ = await _setup(database_url, embedder)
        await memory.add(alice, [NewMemory('He said "hello" (OR) NOT * -- ; DROP TABLE users')])
        for q in ['"', "OR AND NOT", "*", "'; DROP TABLE memories; --", "日本語のテキスト", "   "]:
            await memory.search(alice, q, k=5)  # must not raise
        assert await memory.search(alice, "", k=5) == []
        hits = await memory.search(alice, 'hello "OR" drop', k=5)
        assert hits and "hello" in hits[0].text
        await engine.dispose()

    run(scenario())


def test_query_terms_drop_stopwords_and_duplicates(database_url: str) -> None:
    assert query_terms("What did Melanie paint, and what did Melanie eat?") == [
        "melanie",
        "paint",
        "eat",
    ]


def test_bulk_ingest_embeds_and_stores_every_batch_in_order(
    database_url: str, embedder: Any
) -> None:
    async def scenario() -> None:
        engine, memory, alice, _ = await _setup(database_url, embedder)
        texts = [f"Note {n}: the {word} is in drawer {n}." for n, word in enumerate(["key"] * 9)]
        texts.append("Note 9: my passport is in the blue folder.")
        seen: list[int] = []
        ids = await memory.ingest(
            alice, [NewMemory(t) for t in texts], batch=3, progress=seen.append
        )
        assert seen == [3, 6, 9, 10]
        assert ids == sorted(ids) and len(set(ids)) == 10
        hits = await memory.search(alice, "where did I put my travel document?", k=1)
        assert hits[0].id == ids[9] and hits[0].text == texts[9]
        assert await memory.index_pending() == 0  # all embedded already
        await engine.dispose()

    run(scenario())


def test_indexing_in_batches_skips_a_memory_edited_meanwhile(
    database_url: str, embedder: Any
) -> None:
    async def scenario() -> None:
        engine, memory, alice, _ = await _setup(database_url, embedder)
        ids = await memory.add(alice, [NewMemory(f"plain note {n}") for n in range(5)], embed=False)
        original = memory.embedder.embed

        async def embed_then_edit(texts: list[str]) -> Any:
            vectors = await original(texts)
            if "plain note 0" in texts:  # an edit lands while the batch is embedded
                async with unit_of_work(memory.sessions) as s:
                    repo = MemoryRepository(s)
                    row = await repo.get(alice, ids[0])
                    assert row is not None
                    await repo.update_text(row, "my cat is called Biscuit")
            return vectors

        memory.embedder.embed = embed_then_edit  # type: ignore[method-assign]
        try:
            assert await memory.index_pending(batch=2) == 6  # the edited one: a second pass
        finally:
            memory.embedder.embed = original  # type: ignore[method-assign]
        hits = await memory.search(alice, "what is my pet's name?", k=1)
        assert hits[0].id == ids[0] and hits[0].text == "my cat is called Biscuit"
        assert await memory.index_pending() == 0
        await engine.dispose()

    run(scenario())


def test_full_text_ranking_weighs_rare_words_above_common_ones(database_url: str) -> None:
    """BM25 on both backends: a memory with the query's rare word outranks those with
    only its common word, even repeated (PostgreSQL's ts_rank_cd ranked those first)."""

    async def scenario() -> None:
        engine = create_engine(database_url)
        sessions = create_session_factory(engine)
        async with unit_of_work(sessions) as s:
            user = await AuthService(s, AuthSettings(), "x").create_user(
                "carol", "password123", is_admin=False
            )
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        common = [
            NewMemory(f"Weather talk, day {n}: the weather, weather again.") for n in range(30)
        ]
        rare = NewMemory("The vane on the barn is made of copper.")
        ids = await memory.add(user.id, [*common, rare], embed=False)
        async with unit_of_work(sessions) as s:
            ranked = await MemoryRepository(s).text_search(user.id, "weather copper", 5)
        assert ranked[0] == ids[-1]
        await engine.dispose()

    run(scenario())
