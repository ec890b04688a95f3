"""Retention and consolidation on MemoryControl (real MiniLM, SQLite), and their CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mongars.auth.service import AuthService
from mongars.cli import app as cli
from mongars.conversation.models import Thread, Turn
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.errors import ProviderUnavailable
from mongars.memory.consolidation import duplicate_groups
from mongars.memory.control import MemoryControl
from mongars.memory.models import Memory
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory, turn_text
from mongars.settings import AuthSettings, Settings
from tests.conftest import make_settings
from tests.fakes import ScriptedLLM

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


class World:
    """A migrated SQLite database with two users and a MemoryControl over it."""

    def __init__(self, tmp_path: Path, embedder: Any, llm: ScriptedLLM, **memory: Any) -> None:
        self.url = f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'mongars.db').resolve()}"
        migrate.upgrade(self.url)  # outside any event loop (Alembic runs its own)
        self.settings = make_settings(tmp_path, database_url=self.url, memory=memory)
        self.embedder = embedder
        self.llm = llm

    async def __aenter__(self) -> World:
        self.engine = create_engine(self.url)
        self.sessions = create_session_factory(self.engine)
        async with unit_of_work(self.sessions) as s:
            auth = AuthService(s, AuthSettings(), "x")
            self.alice = await auth.create_user("alice", "password123", is_admin=False)
            self.bob = await auth.create_user("bob", "password123", is_admin=False)
        self.service = MemoryService(self.sessions, self.embedder)
        self.control = MemoryControl(self.sessions, self.settings, self.service, self.llm)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.dispose()

    async def add(self, user: Any, text: str, kind: str = "note", age_days: float = 0) -> int:
        [mid] = await self.service.add(
            user.id, [NewMemory(text, NOW - age_days * DAY, kind=kind)], embed=True
        )
        return mid

    async def thread(
        self, user: Any, thread_id: str, exchanges: list[tuple[str, str]], age_days: float
    ) -> list[int]:
        """A thread with turns (and their turn memories), last active ``age_days`` ago."""
        at = NOW - age_days * DAY
        async with unit_of_work(self.sessions) as s:
            s.add(Thread(id=thread_id, user_id=user.id, title="", created_at=at, updated_at=at))
            turns = [
                Turn(
                    thread_id=thread_id,
                    user_id=user.id,
                    query=q,
                    response=r,
                    model="m",
                    prompt_tokens=1,
                    completion_tokens=1,
                    latency_ms=1.0,
                    created_at=at - timedelta(minutes=len(exchanges) - n),
                )
                for n, (q, r) in enumerate(exchanges)
            ]
            s.add_all(turns)
            await s.flush()
            items = [
                NewMemory(
                    turn_text(t.query, t.response),
                    t.created_at,
                    kind="turn",
                    thread_id=thread_id,
                    turn_id=t.id,
                )
                for t in turns
            ]
        return await self.service.add(user.id, items, embed=True)

    async def memories(self, user: Any) -> dict[int, Memory]:
        async with self.sessions() as s:
            rows = await s.scalars(select(Memory).where(Memory.user_id == user.id))
            return {m.id: m for m in rows}

    async def search_ids(self, user: Any, q: str) -> list[int]:
        return [h.id for h in await self.service.search(user.id, q, k=50)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- retention ---------------------------------------------------------------------------


def test_retention_deletes_expired_kinds_only_and_reports_counts(
    tmp_path: Path, embedder: Any
) -> None:
    world = World(
        tmp_path, embedder, ScriptedLLM(), retention_days={"note": 30, "turn": 0, "fact": 10}
    )

    async def scenario() -> None:
        async with world as w:
            old_note = await w.add(w.alice, "I used to live in Berlin.", age_days=45)
            bobs_old = await w.add(w.bob, "Bob's old note about sailing.", age_days=31)
            new_note = await w.add(w.alice, "I now live in Hamburg.", age_days=5)
            old_turn = await w.add(w.alice, "User: hi\nAssistant: hello", "turn", age_days=900)
            assert old_note in await w.search_ids(w.alice, "Berlin")  # index warmed
            report = await w.control.apply_retention()
            assert report.deleted == {"fact": 0, "note": 2} and report.total == 2
            assert set(await w.memories(w.alice)) == {new_note, old_turn}
            assert bobs_old not in await w.memories(w.bob)
            assert old_note not in await w.search_ids(w.alice, "Berlin city I lived in")
            again = await w.control.apply_retention()
            assert again.total == 0

    run(scenario())


def test_expired_turn_memories_are_not_rebuilt_by_the_indexer(
    tmp_path: Path, embedder: Any
) -> None:
    world = World(tmp_path, embedder, ScriptedLLM(), retention_days={"turn": 365})

    async def scenario() -> None:
        async with world as w:
            old = await w.thread(w.alice, "old", EXCHANGES[:2], age_days=400)
            new = await w.thread(w.alice, "new", COOKING[:1], age_days=10)
            assert (await w.control.apply_retention()).deleted == {"turn": 2}
            assert await w.service.index_pending() == 0  # the crash repair leaves them gone
            assert set(await w.memories(w.alice)) == set(new)
            assert not set(old) & set(await w.search_ids(w.alice, "trip to Japan"))

    run(scenario())


def test_retention_days_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGARS_MEMORY__RETENTION_DAYS", '{"turn": 365, "note": 0}')
    assert Settings(_env_file=None).memory.retention_days == {"turn": 365, "note": 0}
    monkeypatch.setenv("MONGARS_MEMORY__RETENTION_DAYS", '{"turn": -1}')
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(_env_file=None)


# -- near-duplicates ---------------------------------------------------------------------


def test_duplicate_groups_are_greedy_from_the_newest_without_chains() -> None:
    def unit(angle: float) -> list[float]:
        return [float(np.cos(angle)), float(np.sin(angle))]

    # rows newest first; 0~1 and 1~2 are similar, 0 and 2 are not; 3 is another kind
    matrix = np.array([unit(0.0), unit(0.25), unit(0.5), unit(0.0)], dtype=np.float32)
    threshold = float(np.cos(0.3))
    groups = duplicate_groups(["note", "note", "note", "fact"], matrix, threshold)
    assert groups == [(0, [1])]
    assert duplicate_groups(["note"] * 3, matrix[:3], 0.99999) == []


def test_consolidation_merges_near_duplicates_into_the_newest(
    tmp_path: Path, embedder: Any
) -> None:
    world = World(tmp_path, embedder, ScriptedLLM())

    async def scenario() -> None:
        async with world as w:
            oldest = await w.add(w.alice, "I live in Paris with my two cats.", age_days=20)
            older = await w.add(w.alice, "I live in Paris with my two cats!", age_days=10)
            newest = await w.add(w.alice, "i live in paris with my two cats", age_days=1)
            other = await w.add(w.alice, "My favourite food is ramen.", age_days=5)
            same_text_other_kind = await w.add(
                w.alice, "I live in Paris with my two cats.", kind="fact", age_days=3
            )
            bobs = await w.add(w.bob, "I live in Paris with my two cats.", age_days=2)
            report = await w.control.consolidate()
            assert (report.users, report.duplicate_groups, report.merged) == (2, 1, 2)
            rows = await w.memories(w.alice)
            assert set(rows) == {newest, other, same_text_other_kind}
            assert rows[newest].text == "i live in paris with my two cats"
            assert rows[newest].source_ids == sorted([oldest, older])
            assert rows[other].source_ids == []
            assert bobs in await w.memories(w.bob)
            hits = await w.search_ids(w.alice, "where do I live with my pets")
            assert oldest not in hits and older not in hits and newest in hits
            assert (await w.control.consolidate()).merged == 0  # nothing left to merge

    run(scenario())


# -- thread summaries ----------------------------------------------------------------------

EXCHANGES = [
    ("I'm planning a trip to Japan in April.", "That sounds lovely."),
    ("I want to see the cherry blossoms in Kyoto.", "Kyoto is beautiful then."),
    ("My budget is about 3000 euros.", "That is workable."),
    ("I'm vegetarian, so food matters.", "Japan has options."),
    ("I'll travel with my sister Ana.", "Nice."),
    ("We fly from Lisbon.", "Good connections."),
]
COOKING = [
    ("How long should I boil an egg?", "About nine minutes."),
    ("Can I freeze fresh basil?", "Yes, in oil."),
    ("What goes well with lentils?", "Cumin and lemon."),
    ("Is cast iron safe for tomatoes?", "Briefly, yes."),
    ("How do I keep rice from sticking?", "Rinse it first."),
    ("Best oil for frying?", "Peanut or sunflower."),
]
SUMMARY = "The user plans an April trip to Kyoto with sister Ana, vegetarian, 3000 euros."


def test_old_threads_get_one_summary_linked_to_their_turn_memories(
    tmp_path: Path, embedder: Any
) -> None:
    llm = ScriptedLLM(replies=[SUMMARY])

    world = World(tmp_path, embedder, llm, summarize_after_days=30, summarize_min_turns=6)

    async def scenario() -> None:
        async with world as w:
            old = await w.thread(w.alice, "japan", EXCHANGES, age_days=40)
            await w.thread(w.alice, "short", COOKING[:2], age_days=40)
            await w.thread(w.alice, "recent", COOKING[2:], age_days=3)
            report = await w.control.consolidate(user_id=w.alice.id)
            assert report.summaries == 1 and report.errors == []
            rows = await w.memories(w.alice)
            [summary] = [m for m in rows.values() if m.kind == "summary"]
            assert summary.text == SUMMARY and summary.thread_id == "japan"
            assert summary.source_ids == old and summary.embedded
            assert all(i in rows for i in old)  # turns are kept
            prompt = "\n".join(m.content for m in llm.calls[0])
            assert "cherry blossoms" in prompt and "We fly from Lisbon." in prompt
            hits = await w.service.search(w.alice.id, "trip with sister Ana", k=10)
            assert summary.id in [h.id for h in hits]  # recalled like any memory
            # done once: a second run writes nothing and asks the model nothing
            assert (await w.control.consolidate()).summaries == 0 and len(llm.calls) == 1

    run(scenario())


def test_forgotten_turns_are_not_summarised(tmp_path: Path, embedder: Any) -> None:
    llm = ScriptedLLM(replies=[SUMMARY])

    world = World(tmp_path, embedder, llm, summarize_min_turns=5)

    async def scenario() -> None:
        async with world as w:
            ids = await w.thread(w.alice, "japan", EXCHANGES, age_days=40)
            await w.control.forget(w.alice, ids[2])  # the budget
            assert (await w.control.consolidate()).summaries == 1
            assert "3000 euros" not in "\n".join(m.content for m in llm.calls[0])
            [summary] = [m for m in (await w.memories(w.alice)).values() if m.kind == "summary"]
            assert ids[2] not in summary.source_ids and len(summary.source_ids) == 5

    run(scenario())


@pytest.mark.parametrize("failure", ["error", "error-midway", "empty"])
def test_a_provider_failure_stores_no_summary(tmp_path: Path, embedder: Any, failure: str) -> None:
    llm = ScriptedLLM(replies=["" if failure == "empty" else SUMMARY])
    if failure != "empty":
        llm.fail_with = ProviderUnavailable("the model server is down")
        llm.fail_after = 3 if failure == "error-midway" else 0

    world = World(tmp_path, embedder, llm)

    async def scenario() -> None:
        async with world as w:
            await w.thread(w.alice, "japan", EXCHANGES, age_days=40)
            await w.thread(w.bob, "bobs", EXCHANGES, age_days=50)
            async with w.sessions() as s:
                before = await s.scalar(select(func.count()).select_from(Memory))
                epochs = await MemoryRepository(s).epochs(w.alice.id)
            report = await w.control.consolidate()
            assert report.summaries == 0 and len(report.errors) == 1
            assert "down" in report.errors[0] or "empty" in report.errors[0]
            assert len(llm.calls) == 1  # the run stopped at the first failure
            async with w.sessions() as s:
                assert await s.scalar(select(func.count()).select_from(Memory)) == before
                assert await MemoryRepository(s).epochs(w.alice.id) == epochs
                kinds = await s.scalars(select(Memory.kind).distinct())
                assert set(kinds) == {"turn"}

    run(scenario())


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("MONGARS_DATA_DIR", str(data))
    monkeypatch.setenv("MONGARS_SECRET_KEY", "test-secret-key-that-is-long-enough-000")
    monkeypatch.chdir(tmp_path)
    return data


def _seed(
    data: Path,
    embedder: Any,
    notes: list[tuple[str, float]],
    exchanges: list[tuple[str, str]] | None = None,
) -> None:
    """Users and memories in the database the CLI will open (<data dir>/mongars.db)."""
    world = World(data.parent, embedder, ScriptedLLM())

    async def go() -> None:
        async with world as w:
            for text, age in notes:
                await w.add(w.alice, text, age_days=age)
            if exchanges:
                await w.thread(w.alice, "trip", exchanges, age_days=60)

    run(go())


def test_cli_retention_runs_now_and_prints_counts(
    cli_env: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(cli_env, embedder, [("Old note.", 100), ("Fresh note.", 1)])
    runner = CliRunner()
    r = runner.invoke(cli, ["memory", "retention"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # rich wraps long lines
    assert "no retention rules are set" in out and "deleted 0 memories" in out
    monkeypatch.setenv("MONGARS_MEMORY__RETENTION_DAYS", '{"note": 30}')
    r = runner.invoke(cli, ["memory", "retention"])
    assert r.exit_code == 0, r.output
    assert "note: deleted 1 older than 30 days" in " ".join(r.output.split())


@pytest.mark.model
def test_cli_consolidate_with_the_real_model(
    cli_env: Path, embedder: Any, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(
        cli_env,
        embedder,
        [("I keep bees on my roof.", 9), ("I keep bees on my roof!", 2)],
        EXCHANGES,
    )
    monkeypatch.setenv("MONGARS_LLM__MODEL_PATH", str(model_path))
    monkeypatch.setenv("MONGARS_LLM__THREADS", "2")
    runner = CliRunner()
    r = runner.invoke(cli, ["memory", "consolidate", "--user", "nobody"])
    assert r.exit_code == 1 and "no user named" in r.output
    r = runner.invoke(cli, ["memory", "consolidate", "--user", "alice"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # rich wraps long lines
    assert "merged 1 near-duplicate" in out and "wrote 1 thread summaries" in out

    async def summary() -> Memory:
        engine = create_engine(f"sqlite+aiosqlite:///{(cli_env / 'mongars.db').resolve()}")
        async with create_session_factory(engine)() as s:
            row = await s.scalar(select(Memory).where(Memory.kind == "summary"))
        await engine.dispose()
        assert row is not None
        return row

    row = run(summary())
    assert row.text.strip() and row.thread_id == "trip" and len(row.source_ids) == 6
    assert row.embedded
