"""User control (list, edit, forget, export), retention and consolidation SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, true
from sqlalchemy.orm import aliased, defer

from mongars.conversation.models import Thread, Turn
from mongars.db.base import utcnow
from mongars.memory.base_repository import RepositoryBase
from mongars.memory.models import ForgottenTurn, Memory


class ControlRepository(RepositoryBase):
    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        memory = await self.session.get(Memory, memory_id)
        return memory if memory is not None and memory.user_id == user_id else None

    async def by_ids(self, user_id: int, ids: Sequence[int]) -> list[Memory]:
        if not ids:
            return []
        rows = await self.session.scalars(
            select(Memory).where(Memory.user_id == user_id, Memory.id.in_(ids))
        )
        return list(rows)

    async def page(
        self, user_id: int, limit: int, before_id: int | None, kind: str | None
    ) -> list[Memory]:
        query = select(Memory).where(Memory.user_id == user_id)
        if before_id is not None:
            query = query.where(Memory.id < before_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
        rows = await self.session.scalars(query.order_by(Memory.id.desc()).limit(limit))
        return list(rows)

    async def count(self, user_id: int) -> int:
        value = await self.session.scalar(
            select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
        )
        return int(value or 0)

    async def list_page(
        self,
        user_id: int,
        limit: int,
        after: tuple[datetime, int] | None,
        kind: str | None = None,
        thread_id: str | None = None,
    ) -> list[Memory]:
        """The user's memories, newest first (created_at, then id), after a keyset position."""
        query = select(Memory).where(Memory.user_id == user_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
        if thread_id is not None:
            query = query.where(Memory.thread_id == thread_id)
        if after is not None:
            at, memory_id = after
            query = query.where(
                or_(Memory.created_at < at, and_(Memory.created_at == at, Memory.id < memory_id))
            )
        rows = await self.session.scalars(
            query.order_by(Memory.created_at.desc(), Memory.id.desc()).limit(limit)
        )
        return list(rows)

    async def update_text(self, memory: Memory, new_text: str) -> Memory:
        memory.text = new_text
        memory.updated_at = utcnow()
        memory.embedded = False
        memory.embedding = None
        await self.session.flush()
        await self.bump_epoch(memory.user_id, reset=True)
        return memory

    async def delete(self, user_id: int, ids: Sequence[int]) -> int:
        await self._tombstone(user_id, Memory.id.in_(ids))
        result = await self.session.execute(
            delete(Memory).where(Memory.user_id == user_id, Memory.id.in_(ids))
        )
        await self.bump_epoch(user_id, reset=True)
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_all(self, user_id: int) -> int:
        await self._tombstone(user_id, true())
        result = await self.session.execute(delete(Memory).where(Memory.user_id == user_id))
        await self.bump_epoch(user_id, reset=True)
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_thread(self, user_id: int, thread_id: str) -> int:
        """Forget the memories taken from one conversation (its turns and summary)."""
        ids = list(
            await self.session.scalars(
                select(Memory.id).where(Memory.user_id == user_id, Memory.thread_id == thread_id)
            )
        )
        return await self.delete(user_id, ids) if ids else 0

    async def _tombstone(self, user_id: int, which: Any) -> None:
        """Remember which turns' memories are forgotten, so they are not rebuilt."""
        turn_ids = await self.session.scalars(
            select(Memory.turn_id).where(
                Memory.user_id == user_id, Memory.turn_id.is_not(None), which
            )
        )
        existing = set(
            await self.session.scalars(
                select(ForgottenTurn.turn_id).where(ForgottenTurn.user_id == user_id)
            )
        )
        for turn_id in set(turn_ids) - existing:
            self.session.add(ForgottenTurn(turn_id=turn_id, user_id=user_id))
        await self.session.flush()

    async def older_than(self, kind: str, cutoff: datetime) -> list[tuple[int, int]]:
        rows = await self.session.execute(
            select(Memory.id, Memory.user_id).where(Memory.kind == kind, Memory.created_at < cutoff)
        )
        return [(r[0], r[1]) for r in rows]

    async def user_ids_with_memories(self) -> list[int]:
        query = select(Memory.user_id).distinct().order_by(Memory.user_id)
        rows = await self.session.scalars(query)
        return list(rows)

    async def dedupe_candidates(self, user_id: int) -> list[tuple[int, str, np.ndarray]]:
        """(id, kind, embedding) of the user's embedded, valid memories, newest first."""
        rows = await self.session.execute(
            select(Memory.id, Memory.kind, Memory.embedding)
            .where(
                Memory.user_id == user_id, Memory.embedded.is_(True), Memory.invalid_at.is_(None)
            )
            .order_by(Memory.created_at.desc(), Memory.id.desc())
        )
        return [(r[0], r[1], r[2]) for r in rows if r[2] is not None]

    async def merge(self, user_id: int, keeper_id: int, merged_ids: Sequence[int]) -> int:
        """Fold ``merged_ids`` into ``keeper_id``: their ids (and their own sources) join
        the keeper's ``source_ids``, then they are deleted. Returns how many went."""
        rows = {m.id: m for m in await self.by_ids(user_id, [keeper_id, *merged_ids])}
        keeper = rows.get(keeper_id)
        # a memory edited since it was compared is no longer embedded: left alone
        gone = [rows[i] for i in merged_ids if i in rows and rows[i].embedded]
        if keeper is None or not keeper.embedded or not gone:
            return 0
        sources = set(keeper.source_ids or [])
        for m in gone:
            sources.add(m.id)
            sources.update(m.source_ids or [])
        keeper.source_ids = sorted(sources)
        keeper.updated_at = utcnow()
        await self.session.flush()
        return await self.delete(user_id, [m.id for m in gone])

    async def threads_to_summarize(
        self, cutoff: datetime, min_turns: int, user_id: int | None
    ) -> list[tuple[str, int]]:
        """(thread id, user id) of threads idle since before ``cutoff`` with at least
        ``min_turns`` turn memories and no summary covering their last activity."""
        summary = aliased(Memory)
        covered = (
            select(summary.id)
            .where(
                summary.kind == "summary",
                summary.thread_id == Thread.id,
                summary.user_id == Thread.user_id,
                summary.created_at >= Thread.updated_at,
            )
            .correlate(Thread)
            .exists()
        )
        query = (
            select(Thread.id, Thread.user_id)
            .join(
                Memory,
                and_(
                    Memory.thread_id == Thread.id,
                    Memory.user_id == Thread.user_id,
                    Memory.kind == "turn",
                ),
            )
            .where(Thread.updated_at < cutoff, ~covered)
            .group_by(Thread.id, Thread.user_id, Thread.updated_at)
            .having(func.count(Memory.id) >= min_turns)
            .order_by(Thread.updated_at, Thread.id)
        )
        if user_id is not None:
            query = query.where(Thread.user_id == user_id)
        return [(r[0], r[1]) for r in await self.session.execute(query)]

    async def thread_for_summary(
        self, user_id: int, thread_id: str
    ) -> tuple[Thread | None, list[Memory]]:
        """The thread and its turn memories, oldest first."""
        thread = await self.session.scalar(
            select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
        )
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.user_id == user_id, Memory.thread_id == thread_id, Memory.kind == "turn")
            .order_by(Memory.created_at, Memory.id)
        )
        return thread, list(rows)

    async def replace_summary(self, summary: Memory) -> None:
        """Store a thread's summary memory in place of any older one."""
        old = list(
            await self.session.scalars(
                select(Memory.id).where(
                    Memory.user_id == summary.user_id,
                    Memory.kind == "summary",
                    Memory.thread_id == summary.thread_id,
                )
            )
        )
        if old:
            await self.delete(summary.user_id, old)
        await self.add([summary])

    async def export_rows(self, user_id: int) -> tuple[list[Thread], list[Turn], list[Memory]]:
        """Every thread, turn and memory of the user (embeddings not loaded), oldest first."""
        threads = await self.session.scalars(
            select(Thread).where(Thread.user_id == user_id).order_by(Thread.created_at, Thread.id)
        )
        turns = await self.session.scalars(
            select(Turn).where(Turn.user_id == user_id).order_by(Turn.created_at, Turn.id)
        )
        memories = await self.session.scalars(
            select(Memory)
            .options(defer(Memory.embedding))
            .where(Memory.user_id == user_id)
            .order_by(Memory.id)
        )
        return list(threads), list(turns), list(memories)
