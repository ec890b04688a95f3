"""All SQL for answer feedback (the turns themselves: mongars.conversation.repository)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.db.base import utcnow
from mongars.feedback.models import Feedback


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, turn_id: int, user_id: int) -> Feedback | None:
        result = await self.session.execute(
            select(Feedback).where(Feedback.turn_id == turn_id, Feedback.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def put(
        self,
        turn_id: int,
        user_id: int,
        rating: str | None,
        correction: str | None,
        comment: str | None,
    ) -> Feedback:
        """Create or replace the feedback on a turn; safe against a concurrent creation."""
        row = await self.get(turn_id, user_id)
        if row is None:
            try:
                async with self.session.begin_nested():
                    now = utcnow()
                    row = Feedback(turn_id=turn_id, user_id=user_id, created_at=now, updated_at=now)
                    row.rating, row.correction, row.comment = rating, correction, comment
                    self.session.add(row)
                return row
            except IntegrityError:  # another request created it first: replace theirs
                row = await self.get(turn_id, user_id)
                if row is None:  # not that: the turn is gone
                    raise
        row.rating, row.correction, row.comment = rating, correction, comment
        row.updated_at = utcnow()
        await self.session.flush()
        return row

    async def delete(self, turn_id: int, user_id: int) -> bool:
        result = await self.session.execute(
            delete(Feedback).where(Feedback.turn_id == turn_id, Feedback.user_id == user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def for_turns(self, user_id: int, turn_ids: Sequence[int]) -> dict[int, Feedback]:
        """The user's feedback on these turns, by turn id (turns without any left out)."""
        if not turn_ids:
            return {}
        result = await self.session.execute(
            select(Feedback).where(Feedback.user_id == user_id, Feedback.turn_id.in_(turn_ids))
        )
        return {f.turn_id: f for f in result.scalars()}

    async def for_user(self, user_id: int) -> list[Feedback]:
        """All of the user's feedback, oldest first (their data export)."""
        result = await self.session.execute(
            select(Feedback)
            .where(Feedback.user_id == user_id)
            .order_by(Feedback.created_at, Feedback.turn_id)
        )
        return list(result.scalars())
