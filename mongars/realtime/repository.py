"""All SQL for real-time delivery (ticket uses)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import WsTicketUse
from mongars.db.base import utcnow


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def use_once(self, nonce: str, expires_at: int) -> bool:
        """Record a ticket's use; False if it was used before (any process)."""
        await self.session.execute(delete(WsTicketUse).where(WsTicketUse.expires_at < utcnow()))
        try:
            async with self.session.begin_nested():
                self.session.add(
                    WsTicketUse(nonce=nonce, expires_at=datetime.fromtimestamp(expires_at, UTC))
                )
        except IntegrityError:
            return False
        return True
