"""Admin actions on accounts, each recorded in the audit log in the same transaction.

Used by the JSON admin API and the operator console alike, so both enforce the
same rules (an admin cannot demote or disable themselves) and leave the same trail.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry, User
from mongars.auth.repository import AuditRepository
from mongars.auth.schemas import AuditEntryOut, AuditPage, UserOut
from mongars.auth.service import AuthService
from mongars.errors import Forbidden
from mongars.settings import AuthSettings

AUDIT_PAGE_MAX = 200


class AdminService:
    def __init__(
        self, session: AsyncSession, settings: AuthSettings, secret: str, address: str | None
    ) -> None:
        self.auth = AuthService(session, settings, secret)
        self.audit = AuditRepository(session)
        self.address = address

    async def _record(
        self, actor: User | str, action: str, target: str | None, detail: str = ""
    ) -> None:
        await self.audit.add(
            AuditEntry(
                actor=_name(actor),
                action=action,
                target=target,
                detail=detail,
                address=self.address,
            )
        )

    async def list_users(self) -> list[UserOut]:
        return await self.auth.list_users()

    async def create_user(
        self, actor: User | str, username: str, password: str, *, is_admin: bool
    ) -> UserOut:
        user = await self.auth.create_user(username, password, is_admin=is_admin)
        await self._record(actor, "user.create", username, "admin" if is_admin else "user")
        return user

    async def set_admin(self, actor: User | str, username: str, is_admin: bool) -> UserOut:
        if username == _name(actor) and not is_admin:
            raise Forbidden("an admin cannot demote themselves (ask another admin)")
        user = await self.auth.set_admin(username, is_admin)
        await self._record(actor, "user.promote" if is_admin else "user.demote", username)
        return user

    async def set_active(self, actor: User | str, username: str, is_active: bool) -> UserOut:
        if username == _name(actor) and not is_active:
            raise Forbidden("an admin cannot disable their own account")
        user = await self.auth.set_active(username, is_active)
        await self._record(actor, "user.enable" if is_active else "user.disable", username)
        return user

    async def reset_password(self, actor: User | str, username: str, password: str) -> UserOut:
        """Set a new password; every token the user held stops working."""
        user = await self.auth.reset_password(username, password)
        await self._record(actor, "user.reset_password", username)
        return user

    async def audit_page(self, limit: int, before: int | None) -> AuditPage:
        limit = max(1, min(limit, AUDIT_PAGE_MAX))
        rows = await self.audit.page(limit + 1, before)
        items = [_entry_out(r) for r in rows[:limit]]
        return AuditPage(items=items, next_before=items[-1].id if len(rows) > limit else None)


def _name(actor: User | str) -> str:
    """An account acting, or the operator at the command line ("cli:<os user>")."""
    return actor if isinstance(actor, str) else actor.username


def _entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        created_at=entry.created_at,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        detail=entry.detail,
        address=entry.address,
    )
