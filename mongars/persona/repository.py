"""All SQL for profiles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.db.base import utcnow
from mongars.persona.models import Profile

PREFERENCE_FIELDS = ("persona", "tone", "verbosity", "language", "emoji")


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int) -> Profile | None:
        return await self.session.get(Profile, user_id)

    async def set_preferences(self, user_id: int, prefs: dict[str, Any]) -> Profile:
        """Replace the explicit preferences (creating the profile if needed)."""
        row = await self.session.get(Profile, user_id)
        if row is None:
            row = Profile(user_id=user_id, style={}, messages_observed=0)
            self.session.add(row)
        for name in PREFERENCE_FIELDS:
            setattr(row, name, prefs.get(name))
        row.updated_at = utcnow()
        await self.session.flush()
        return row

    async def delete(self, user_id: int) -> bool:
        result = await self.session.execute(delete(Profile).where(Profile.user_id == user_id))
        return bool(getattr(result, "rowcount", 0))

    async def begin_observation(self, user_id: int) -> Profile | None:
        """Count one more observed message and return the row, write-locked.

        Writing first takes the row lock (PostgreSQL) or the write lock
        (SQLite) before the style is read, so two concurrent observations of
        the same user cannot both start from the same old values.
        """
        result = await self.session.execute(
            update(Profile)
            .where(Profile.user_id == user_id)
            .values(messages_observed=Profile.messages_observed + 1, updated_at=utcnow())
            .returning(Profile)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none()

    async def save_observation(self, user_id: int, expected: int, style: dict[str, Any]) -> bool:
        """Store a style computed from the ``expected``-th state; False if the row moved on."""
        result = await self.session.execute(
            update(Profile)
            .where(Profile.user_id == user_id, Profile.messages_observed == expected)
            .values(style=style, messages_observed=expected + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    async def create_observed(self, user_id: int, style: dict[str, Any]) -> Profile:
        row = Profile(user_id=user_id, style=style, messages_observed=1)
        self.session.add(row)
        await self.session.flush()
        return row

    async def save_style(self, user_id: int, style: dict[str, Any]) -> None:
        await self.session.execute(
            update(Profile)
            .where(Profile.user_id == user_id)
            .values(style=style)
            .execution_options(synchronize_session=False)
        )
