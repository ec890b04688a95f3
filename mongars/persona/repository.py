"""All SQL for profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
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

    async def reset(self, user_id: int) -> None:
        """Forget the preferences and the measured style, but not the training consent:
        a row holding only a consent choice stays (reverting it to the server's default
        is the user's own, separate decision)."""
        await self.session.execute(
            delete(Profile).where(Profile.user_id == user_id, Profile.allow_training.is_(None))
        )
        await self.session.execute(
            update(Profile)
            .where(Profile.user_id == user_id)
            .values(
                **dict.fromkeys(PREFERENCE_FIELDS),
                style={},
                messages_observed=0,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )

    async def set_training_consent(self, user_id: int, allow: bool | None) -> Profile:
        """Set (or, with None, return to the server's default) the user's training consent."""
        row = await self.session.get(Profile, user_id)
        if row is None:
            row = Profile(user_id=user_id, style={}, messages_observed=0)
            self.session.add(row)
        row.allow_training = allow
        row.updated_at = utcnow()
        await self.session.flush()
        return row

    async def training_consent(self, user_ids: Sequence[int], default: bool) -> dict[int, bool]:
        """Each user's effective training consent, in one query: their own choice, else
        ``default`` (the server's MONGARS_TRAINING__DEFAULT_CONSENT), also for users
        without a profile row. Every id given is a key of the result."""
        ids = set(user_ids)
        if not ids:
            return {}
        result = await self.session.execute(
            select(Profile.user_id, Profile.allow_training).where(
                Profile.user_id.in_(ids), Profile.allow_training.is_not(None)
            )
        )
        chosen = {user_id: bool(allow) for user_id, allow in result}
        return {user_id: chosen.get(user_id, default) for user_id in ids}

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
