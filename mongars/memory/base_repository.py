"""What every memory repository shares: the session, the dialect and the user's epoch.

The memory SQL is split by role: full-text reads (text_repository.py), other
search reads (search_repository.py, which builds on them), user
control, retention and consolidation (control_repository.py), indexing and
facts (repository.py, whose ``MemoryRepository`` combines them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.db.upsert import insert_if_absent
from mongars.memory.models import Memory, MemoryEpoch


class RepositoryBase:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    async def bump_epoch(self, user_id: int, reset: bool = False) -> None:
        values: dict[str, Any] = {"epoch": MemoryEpoch.epoch + 1}
        if reset:
            values["reset_epoch"] = MemoryEpoch.reset_epoch + 1
        bump = update(MemoryEpoch).where(MemoryEpoch.user_id == user_id).values(**values)
        if getattr(await self.session.execute(bump), "rowcount", 0) == 0:
            first = {"user_id": user_id, "epoch": 1, "reset_epoch": int(reset)}
            if not await insert_if_absent(self.session, MemoryEpoch, first, ["user_id"]):
                await self.session.execute(bump)  # the user's first row, made meanwhile
        await self.session.flush()

    async def epochs(self, user_id: int) -> tuple[int, int]:
        row = (
            await self.session.execute(
                select(MemoryEpoch.epoch, MemoryEpoch.reset_epoch).where(
                    MemoryEpoch.user_id == user_id
                )
            )
        ).first()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def add(self, memories: Sequence[Memory]) -> list[Memory]:
        self.session.add_all(memories)
        await self.session.flush()
        for user_id in {m.user_id for m in memories}:
            await self.bump_epoch(user_id)
        return list(memories)
