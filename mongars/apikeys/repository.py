"""All SQL for API keys."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.apikeys.models import ApiKey
from mongars.auth.models import User


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def get_for_user(self, key_id: int, user_id: int) -> ApiKey | None:
        result = await self.session.execute(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def list_for_user(self, user_id: int) -> list[ApiKey]:
        result = await self.session.execute(
            select(ApiKey)
            .where(ApiKey.user_id == user_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
        return list(result.scalars())

    async def count_active(self, user_id: int) -> int:
        query = (
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )
        return int(await self.session.scalar(query) or 0)

    async def with_owner_by_hash(self, key_hash: str) -> tuple[ApiKey, User] | None:
        """The key with this hash and its owner, whatever their state."""
        result = await self.session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == key_hash)
        )
        row = result.one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def flush(self) -> None:
        await self.session.flush()
