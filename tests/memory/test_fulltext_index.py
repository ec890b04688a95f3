"""SQLite's memory index of per-user words (migration 0009): each user's words are
terms of their own, kept in step with the memories by triggers, and rebuilt from
existing memories when the migration runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import text

from mongars.auth.service import AuthService
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, reads, unit_of_work
from mongars.db.fulltext import owned_words
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory
from mongars.memory.terms import TermStats
from mongars.settings import AuthSettings


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"


async def _users(sessions: Any, *names: str) -> list[int]:
    async with unit_of_work(sessions) as s:
        auth = AuthService(s, AuthSettings(), "x")
        return [(await auth.create_user(n, "password123", is_admin=False)).id for n in names]


async def _text(sessions: Any, user: int, query: str) -> list[int]:
    async with unit_of_work(sessions) as s:
        return await MemoryRepository(s).text_search(user, query, 20)


async def _integrity(sessions: Any) -> None:
    async with unit_of_work(sessions) as s:  # raises on a damaged index
        await s.execute(text("INSERT INTO memories_fts(memories_fts) VALUES ('integrity-check')"))


def test_owned_words_tag_each_word_with_its_owner() -> None:
    assert (
        owned_words(42, "Zürich, snake_case and 東京!") == "42_Zürich 42_snake_case 42_and 42_東京"
    )
    assert owned_words(7, "  ...  ") == ""


def test_each_user_matches_only_their_own_words_through_edits_and_deletes(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        url = _url(tmp_path)
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        alice, bob, carol = await _users(sessions, "alice", "bob", "carol")
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        a = await memory.add(
            alice,
            [
                NewMemory("The zebra crossing in Zürich is repainted."),
                NewMemory("My variable is called snake_case_name."),
                NewMemory("東京 was lovely in spring; the naïve café too."),
            ],
            embed=False,
        )
        b = await memory.add(bob, [NewMemory("A zebra escaped from the zoo.")], embed=False)
        c = await memory.add(carol, [NewMemory("zebra zebra zebra")], embed=False)
        assert await _text(sessions, alice, "zebra") == [a[0]]
        assert await _text(sessions, bob, "zebras") == b  # stemmed as before
        assert await _text(sessions, alice, "zurich") == [a[0]]  # diacritics folded
        assert await _text(sessions, alice, "snake_case_name") == [a[1]]
        assert await _text(sessions, alice, "東京") == [a[2]]
        assert await _text(sessions, alice, "naive cafe") == [a[2]]
        # a query cannot reach another user's words by writing their tag
        assert await _text(sessions, alice, f"{bob}_zebra zoo") == []

        async with unit_of_work(sessions) as s:
            repo = MemoryRepository(s)
            edited = await repo.get(alice, a[0])
            assert edited is not None
            await repo.update_text(edited, "The okapi crossing")
            await repo.delete(alice, [a[1]])
        assert await _text(sessions, alice, "zebra") == []
        assert await _text(sessions, alice, "okapi") == [a[0]]
        assert await _text(sessions, alice, "snake_case_name") == []
        async with unit_of_work(sessions) as s:  # the account goes: its memories too
            await s.execute(text("DELETE FROM users WHERE id = :u"), {"u": carol})
        assert await _text(sessions, carol, "zebra") == []
        assert c and await _text(sessions, bob, "zebra") == b
        await _integrity(sessions)
        await engine.dispose()

    migrate.upgrade(_url(tmp_path))  # outside any event loop (Alembic runs its own)
    asyncio.run(scenario())


def test_common_words_of_a_large_user_are_left_out_of_matching(tmp_path: Path) -> None:
    """Counted among the user's own memories: the rarest words are matched while
    the memories holding them add up to less than the limit (1,000 here); when
    even the rarest is that common, nothing is matched."""

    async def scenario() -> None:
        url = _url(tmp_path)
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        big, small = await _users(sessions, "big", "small")
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        items = [
            NewMemory(
                f"weather note {n} about the lake"
                + (" alpha" if n < 600 else "")
                + (" beta" if 1000 <= n < 1500 else "")
            )
            for n in range(2200)
        ]
        items += [NewMemory("the copper weather vane")]
        await memory.add(big, items, embed=False)
        await memory.add(small, [NewMemory("weather copper")], embed=False)
        stats = TermStats(0.05)
        async with unit_of_work(sessions) as s:
            repo = MemoryRepository(s)
            plan = await stats.plan(repo, big, "weather copper", user_size=2201)
            assert plan.terms == ["copper"]
            plan = await stats.plan(repo, big, "alpha copper", user_size=2201)
            assert plan.terms == ["alpha", "copper"]  # 600 + 1 memories
            plan = await stats.plan(repo, big, "alpha beta copper", user_size=2201)
            assert plan.terms == ["beta", "copper"]  # alpha would make it 1,101
            plan = await stats.plan(repo, big, "weather lake", user_size=2201)
            assert plan.terms == []
            assert await memory.recall._text(repo, big, "weather lake") == []
            plan = await stats.plan(repo, small, "weather copper", user_size=1)
            assert plan.terms == ["weather", "copper"]
        await engine.dispose()

    migrate.upgrade(_url(tmp_path))  # outside any event loop (Alembic runs its own)
    asyncio.run(scenario())


def test_the_migration_indexes_existing_memories_and_goes_back(tmp_path: Path) -> None:
    url = _url(tmp_path)
    migrate.upgrade(url, "0008")

    async def add_with_old_index() -> int:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        (alice,) = await _users(sessions, "alice")
        async with unit_of_work(sessions) as s:
            await s.execute(
                text(
                    "INSERT INTO memories (user_id, kind, text, created_at, updated_at, "
                    "embedded, source_ids, meta) VALUES (:u, 'note', :t, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, '[]', '{}')"
                ),
                [{"u": alice, "t": "the heron by the river"}, {"u": alice, "t": "a red kite"}],
            )
        await engine.dispose()
        return alice

    alice = asyncio.run(add_with_old_index())
    migrate.upgrade(url)

    async def search_new() -> list[str]:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        ids = await _text(sessions, alice, "heron")
        await _integrity(sessions)
        async with unit_of_work(sessions) as s:
            rows = await s.execute(text("SELECT text FROM memories WHERE id = :i"), {"i": ids[0]})
            found = [str(r[0]) for r in rows]
        await engine.dispose()
        return found

    assert asyncio.run(search_new()) == ["the heron by the river"]
    command.downgrade(migrate.alembic_config(url), "0008")

    async def search_old() -> int:
        engine = create_engine(url)
        async with engine.connect() as conn:
            n = await conn.scalar(
                text("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH :q"),
                {"q": f"owner:u{alice} AND kite"},
            )
        await engine.dispose()
        return int(n or 0)

    assert asyncio.run(search_old()) == 1


def test_words_are_matched_within_their_owner_on_both_backends(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        sessions = create_session_factory(engine)
        alice, bob = await _users(sessions, "alice", "bob")
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        a = await memory.add(alice, [NewMemory("Zebras were running at the zoo.")], embed=False)
        b = await memory.add(bob, [NewMemory("The zebra ran off; zoo closed.")], embed=False)
        c = await memory.add(alice, [NewMemory("The column is named snake_case.")], embed=False)
        assert await _text(sessions, alice, "zebra zoo") == a
        # PostgreSQL makes a phrase query of it: the tagged lexemes keep positions
        assert await _text(sessions, alice, "snake_case") == c
        assert await _text(sessions, bob, "zebra zoo") == b
        assert await _text(sessions, alice, "running") == a  # stemmed as before
        assert await _text(sessions, alice, f"{bob}_zebra") == []  # a tag is a word
        stats = TermStats(0.05)
        async with unit_of_work(sessions) as s:
            plan = await stats.plan(MemoryRepository(s), alice, "zebra zoo giraffe")
        assert plan.terms == ["zebra", "zoo", "giraffe"]
        async with unit_of_work(sessions) as s:  # the account goes: its memories too
            await s.execute(text("DELETE FROM users WHERE id = :u"), {"u": bob})
        assert await _text(sessions, bob, "zebra") == []
        assert await _text(sessions, alice, "zebra") == a
        await engine.dispose()

    migrate.upgrade(database_url)
    asyncio.run(scenario())


@pytest.mark.postgres
def test_postgres_migration_goes_back_and_forth(pg_database: str) -> None:
    migrate.upgrade(pg_database)
    command.downgrade(migrate.alembic_config(pg_database), "0008")
    migrate.upgrade(pg_database)
    migrate.check(pg_database)


@pytest.mark.postgres
def test_postgres_connections_carry_the_search_settings(pg_database: str) -> None:
    """A generic plan made for an average user would scan a large user's memories;
    the HNSW scan settings are the connection's (no statement per search), and
    reads() runs no transaction."""

    async def settings() -> list[str]:
        engine = create_engine(pg_database)
        async with reads(create_session_factory(engine)) as session:
            values = [
                str(await session.scalar(text(f"SHOW {name}")))
                for name in ("plan_cache_mode", "hnsw.iterative_scan", "hnsw.ef_search")
            ]
            # outside a transaction each statement has its own: two xids differ
            first = await session.scalar(text("SELECT pg_current_xact_id()::text"))
            second = await session.scalar(text("SELECT pg_current_xact_id()::text"))
            values.append(str(first != second))
        await engine.dispose()
        return values

    assert asyncio.run(settings()) == ["force_custom_plan", "relaxed_order", "100", "True"]


class _FailingEmbedder:
    model_id = "failing"

    async def embed(self, texts: Any) -> np.ndarray:
        await asyncio.sleep(0.01)  # fails while the full-text query is under way
        raise RuntimeError("embedder down")


def test_a_failing_query_embedding_fails_the_search_cleanly(tmp_path: Path) -> None:
    """On SQLite the full text runs on the session beside the dense search: an
    embedding error surfaces once it is done, and the next search works."""

    async def scenario() -> None:
        engine = create_engine(_url(tmp_path))
        sessions = create_session_factory(engine)
        (alice,) = await _users(sessions, "alice")
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        await memory.add(alice, [NewMemory("copper weather vane")], embed=False)
        failing = MemoryService(sessions, _FailingEmbedder())  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="embedder down"):
            await failing.search(alice, "copper vane", k=5)
        assert await _text(sessions, alice, "copper") != []
        await engine.dispose()

    migrate.upgrade(_url(tmp_path))
    asyncio.run(scenario())


def test_a_common_word_is_not_matched_but_weighs_the_matches(database_url: str) -> None:
    """In a large memory a common word is left out of the match (its 1,100
    memories are not read); on PostgreSQL it still weighs the memories the rare
    word found."""

    async def scenario() -> None:
        engine = create_engine(database_url)
        sessions = create_session_factory(engine)
        [user] = await _users(sessions, "dana")
        memory = MemoryService(sessions, embedder=None)  # type: ignore[arg-type]
        notes = [NewMemory(f"weather note {n}") for n in range(1100)]
        await memory.add(user, notes, embed=False)
        [kettle, vane] = await memory.add(
            user,
            [NewMemory("the copper kettle spout"), NewMemory("the copper weather vane")],
            embed=False,
        )
        async with unit_of_work(sessions) as s:
            repo = MemoryRepository(s)
            plan = await memory.recall.terms.plan(repo, user, "copper weather")
            assert plan.terms == ["copper"]
            found = await memory.recall._text(repo, user, "copper weather")
        assert {i for i, _ in found} == {kettle, vane}  # no weather note read
        if engine.dialect.name == "postgresql":
            assert plan.scored == ["copper", "weather"]
            assert [i for i, _ in found] == [vane, kettle]
        await engine.dispose()

    migrate.upgrade(database_url)  # outside any event loop (Alembic runs its own)
    asyncio.run(scenario())
