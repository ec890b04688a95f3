"""All SQL for memories: ``MemoryRepository`` combines the search reads
(search_repository.py) and user control (control_repository.py) with the
indexing writes and facts kept here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import Table, bindparam, func, select, update

from mongars.conversation.models import Turn
from mongars.db.upsert import insert_if_absent
from mongars.memory.control_repository import ControlRepository
from mongars.memory.models import Embedding, ForgottenTurn, Memory
from mongars.memory.search_repository import MemoryRow, SearchRepository, VectorRows

__all__ = ["MemoryRepository", "MemoryRow", "VectorRows"]


class MemoryRepository(SearchRepository, ControlRepository):
    # -- indexing -------------------------------------------------------------------

    async def set_embeddings(
        self, ids: Sequence[int], vectors: np.ndarray, texts: Sequence[str] | None = None
    ) -> None:
        """Store embeddings; with ``texts`` (what was embedded), only where the memory
        still has that text (an edit since then leaves it for the next pass)."""
        table = Memory.__table__
        assert isinstance(table, Table)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(embedding=bindparam("vec", type_=Embedding()), embedded=True)
        )
        if texts is not None:
            stmt = stmt.where(table.c.text == bindparam("seen"))
        rows = [{"mid": int(i), "vec": v} for i, v in zip(ids, vectors, strict=True)]
        if texts is not None:
            rows = [{**r, "seen": t} for r, t in zip(rows, texts, strict=True)]
        if rows:
            await self.session.execute(stmt, rows)
            users = await self.session.scalars(
                select(Memory.user_id).where(Memory.id.in_(ids)).distinct()
            )
            for user_id in list(users):
                await self.bump_epoch(user_id)

    async def pending_texts(self, limit: int, after_id: int = 0) -> list[tuple[int, str]]:
        """(id, text) of memories still without an embedding (any user), id > after_id,
        oldest first."""
        rows = await self.session.execute(
            select(Memory.id, Memory.text)
            .where(Memory.embedded.is_(False), Memory.id > after_id)
            .order_by(Memory.id)
            .limit(limit)
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    async def embedded_texts(self, after_id: int, limit: int) -> list[tuple[int, int, str]]:
        """(id, user, text) of embedded memories with id > after_id, in id order."""
        rows = await self.session.execute(
            select(Memory.id, Memory.user_id, Memory.text)
            .where(Memory.embedded.is_(True), Memory.id > after_id)
            .order_by(Memory.id)
            .limit(limit)
        )
        return [(int(i), int(u), str(t)) for i, u, t in rows]

    async def recent_queries(self, since: datetime, limit: int) -> list[tuple[int, str]]:
        """(user, their latest question) for users who asked something since ``since``."""
        newest = (
            select(Turn.user_id, func.max(Turn.id).label("last"))
            .where(Turn.created_at >= since, Turn.status == "completed")
            .group_by(Turn.user_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(Turn.user_id, Turn.query)
            .join(newest, Turn.id == newest.c.last)
            .order_by(Turn.id.desc())
            .limit(limit)
        )
        return [(int(u), str(q)) for u, q in rows]

    async def add_turn_memory(self, memory: Memory) -> bool:
        """Store a turn's memory; False when the turn has one already. The turn's own
        write (after answering) and the indexer's repair of turns without a memory can
        race: the second does nothing (mongars/db/upsert.py says why not a savepoint)."""
        table = Memory.__table__
        assert isinstance(table, Table)
        values = {
            c.key: getattr(memory, c.key)
            for c in table.columns
            if c.key != "id" and getattr(memory, c.key) is not None
        }
        if not await insert_if_absent(self.session, Memory, values, ["turn_id"]):
            return False
        await self.bump_epoch(memory.user_id)
        return True

    async def unindexed_turns(self, limit: int) -> list[Turn]:
        """Completed turns that have no memory yet (e.g. a crash right after answering)."""
        rows = await self.session.scalars(
            select(Turn)
            .outerjoin(Memory, Memory.turn_id == Turn.id)
            .outerjoin(ForgottenTurn, ForgottenTurn.turn_id == Turn.id)
            .where(Memory.id.is_(None), ForgottenTurn.turn_id.is_(None), Turn.status == "completed")
            .order_by(Turn.id)
            .limit(limit)
        )
        return list(rows)

    # -- facts ----------------------------------------------------------------------

    async def valid_facts(self, user_id: int, subject: str) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory).where(
                Memory.user_id == user_id,
                Memory.kind == "fact",
                Memory.subject == subject,
                Memory.invalid_at.is_(None),
            )
        )
        return list(rows)

    async def set_facts_status(self, memory_id: int, status: str, error: str | None) -> None:
        await self.session.execute(
            update(Memory)
            .where(Memory.id == memory_id)
            .values(facts_status=status, facts_error=error)
        )

    async def facts_pending(self, limit: int) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory).where(Memory.facts_status == "pending").order_by(Memory.id).limit(limit)
        )
        return list(rows)

    async def facts(self, user_id: int, include_past: bool, limit: int) -> list[Memory]:
        query = select(Memory).where(Memory.user_id == user_id, Memory.kind == "fact")
        if not include_past:
            query = query.where(Memory.invalid_at.is_(None))
        rows = await self.session.scalars(query.order_by(Memory.id.desc()).limit(limit))
        return list(rows)

    async def facts_failed(self, user_id: int, limit: int) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.user_id == user_id, Memory.facts_status == "failed")
            .order_by(Memory.id.desc())
            .limit(limit)
        )
        return list(rows)
