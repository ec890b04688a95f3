"""All SQL for threads and turns."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.conversation.models import Thread, Turn
from mongars.db.base import utcnow


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def thread(self, thread_id: str) -> Thread | None:
        return await self.session.get(Thread, thread_id)

    async def ensure_thread(self, thread_id: str, user_id: int, title: str) -> Thread:
        """Get the thread, creating it if new; safe against a concurrent creation."""
        thread = await self.session.get(Thread, thread_id)
        if thread is None:
            try:
                async with self.session.begin_nested():
                    thread = Thread(id=thread_id, user_id=user_id, title=title)
                    self.session.add(thread)
            except IntegrityError:
                thread = await self.session.get(Thread, thread_id)
                assert thread is not None
        return thread

    async def latest_thread(self, user_id: int) -> Thread | None:
        result = await self.session.execute(
            select(Thread)
            .where(Thread.user_id == user_id)
            .order_by(Thread.updated_at.desc(), Thread.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def recent_turns(self, thread_id: str, limit: int) -> list[Turn]:
        """The thread's last turns (regenerated-away answers excluded), newest first."""
        result = await self.session.execute(
            select(Turn)
            .where(Turn.thread_id == thread_id, Turn.status != "superseded")
            .order_by(Turn.created_at.desc(), Turn.id.desc())
            .limit(limit)
        )
        return list(result.scalars())

    async def owned_turn(self, turn_id: int, user_id: int) -> Turn | None:
        """The turn if it exists and belongs to ``user_id`` (whatever its status)."""
        result = await self.session.execute(
            select(Turn).where(Turn.id == turn_id, Turn.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def add_turn(self, turn: Turn, thread: Thread) -> Turn:
        thread.updated_at = utcnow()
        self.session.add(turn)
        await self.session.flush()
        return turn

    async def supersede(self, turn_id: int, user_id: int) -> None:
        await self.session.execute(
            update(Turn)
            .where(Turn.id == turn_id, Turn.user_id == user_id)
            .values(status="superseded")
        )

    async def history(self, user_id: int, limit: int, thread_id: str | None) -> list[Turn]:
        query = select(Turn).where(Turn.user_id == user_id, Turn.status != "superseded")
        if thread_id is not None:
            query = query.where(Turn.thread_id == thread_id)
        result = await self.session.execute(
            query.order_by(Turn.created_at.desc(), Turn.id.desc()).limit(limit)
        )
        return list(result.scalars())
