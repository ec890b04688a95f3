"""All SQL for accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry, RevokedToken, User
from mongars.db.base import utcnow


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        result = await self.session.execute(select(User).where(User.username == username))
        return result.scalar_one_or_none()

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def add(self, username: str, password_hash: str, *, is_admin: bool) -> User:
        user = User(username=username, password_hash=password_hash, is_admin=is_admin)
        self.session.add(user)
        await self.session.flush()
        return user

    async def list_usernames(self) -> list[str]:
        result = await self.session.execute(select(User.username).order_by(User.username))
        return list(result.scalars())

    async def admin_ids(self) -> list[int]:
        return list(await self.session.scalars(select(User.id).where(User.is_admin.is_(True))))

    async def list_all(self) -> list[User]:
        result = await self.session.execute(select(User).order_by(User.username))
        return list(result.scalars())

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        if await self.session.get(RevokedToken, jti) is None:
            self.session.add(RevokedToken(jti=jti, expires_at=expires_at))
        await self.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
        await self.session.flush()

    async def is_revoked(self, jti: str) -> bool:
        return await self.session.get(RevokedToken, jti) is not None


class AuditRepository:
    """The admin audit log: append and read, newest first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def page(self, limit: int, before: int | None) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditEntry.id < before)
        return list((await self.session.execute(query)).scalars())
