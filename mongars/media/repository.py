"""All SQL for media routes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mongars.conversation.models import Turn


class MediaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def turn(self, turn_id: int) -> Turn | None:
        return await self.session.get(Turn, turn_id)
