"""A turn's memory is written by the turn (after answering) and by the indexer's repair
of turns without one (after a crash): both may run at once, and the second must do
nothing, not fail. Found by `mongars bench crash` (an IntegrityError in both, then,
with a savepoint around the insert, "database is locked" at once on SQLite)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from mongars.bench.common import create_users
from mongars.db.base import utcnow
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.memory.models import Memory
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import NewMemory, turn_text
from tests.conftest import Api, make_settings
from tests.fakes import ScriptedLLM


def test_a_turn_memory_written_twice_is_stored_once(
    api_factory: Callable[..., Api], embedder: Any, backend: dict[str, Any]
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["Noted."]),
        embedder=embedder,
        memory={"enabled": True},
        **backend,
    )
    alice = api.setup_admin("alice")
    r = api.client.post("/api/v1/conversation/chat", json={"message": "hi there"}, headers=alice)
    assert r.status_code == 200, r.text
    turn_id = r.json()["turn_id"]
    service = api.runtime.memory.service
    uid = api.client.get("/api/v1/user/me", headers=alice).json()["id"]
    again = NewMemory(turn_text("hi there", "Noted."), kind="turn", turn_id=turn_id)
    # the turn stored it already: the repair's write (or a late one) does nothing
    assert api.client.portal.call(service.add_turn, uid, again) is False  # type: ignore[union-attr]
    items = api.client.get("/api/v1/memory", headers=alice).json()["items"]
    assert [(m["turn_id"], m["text"]) for m in items] == [(turn_id, again.text)]


def test_a_memory_write_waits_for_a_busy_sqlite_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    create_users(settings, ["alice"])
    url = settings.resolved_database_url
    other = sqlite3.connect(str(make_url(url).database), isolation_level=None)

    async def write_while_busy() -> float:
        engine = create_engine(url)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.5 s
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        started = time.monotonic()
        async with unit_of_work(create_session_factory(engine)) as session:
            now = utcnow()
            memory = Memory(
                user_id=1,
                kind="note",
                text="the full-text trigger runs too",
                created_at=now,
                updated_at=now,
                embedded=False,
                meta={},
                source_ids=[],
            )
            assert await MemoryRepository(session).add_turn_memory(memory)
        await engine.dispose()
        return time.monotonic() - started

    assert asyncio.run(write_while_busy()) >= 0.4  # it waited, then wrote
    other.close()
