"""Profiles: read (cached per process), set preferences, observe messages, reset, export.

Like the turn pipeline, this service opens its own short units of work, so the
in-process cache is only refreshed or invalidated once a change is committed.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import asdict
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.auth.models import User
from mongars.db.engine import unit_of_work
from mongars.persona.models import Profile
from mongars.persona.repository import ProfileRepository
from mongars.persona.schemas import (
    InferredStyle,
    MeasuredLanguage,
    MeasuredValue,
    Preferences,
    ProfileOut,
    ProfileUpdate,
)
from mongars.persona.steering import Preferences as Prefs
from mongars.persona.steering import ProfileData, confidence, steer
from mongars.persona.style import METRICS, MessageStyle, Style, measure
from mongars.settings import Settings


class ProfileCache:
    """user id -> ProfileData, bounded (LRU) and expiring after ``ttl`` seconds.

    Another process may change a profile: the TTL bounds how long this one
    serves the old values. A load that raced with an invalidation is not kept.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[int, tuple[float, ProfileData]] = OrderedDict()
        self.epoch = 0  # bumped by every invalidation

    def get(self, user_id: int) -> ProfileData | None:
        item = self._items.get(user_id)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[user_id]
            return None
        self._items.move_to_end(user_id)
        return item[1]

    def put(self, data: ProfileData, epoch: int, *, keep_expiry: bool = False) -> None:
        """Cache ``data`` unless an invalidation happened since ``epoch``. With
        ``keep_expiry`` an existing entry keeps its deadline (its preferences were
        not re-read, so they must not be trusted for longer)."""
        if epoch != self.epoch or self.ttl <= 0:
            return
        expires = time.monotonic() + self.ttl
        if keep_expiry:
            if (old := self._items.get(data.user_id)) is None:
                return
            expires = old[0]
        self._items[data.user_id] = (expires, data)
        self._items.move_to_end(data.user_id)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def invalidate(self, user_id: int) -> None:
        self.epoch += 1
        self._items.pop(user_id, None)


def _data(user_id: int, row: Profile | None) -> ProfileData:
    if row is None:
        return ProfileData(user_id)
    prefs = Prefs(row.persona, row.tone, row.verbosity, row.language, row.emoji)
    return ProfileData(user_id, prefs, Style.from_json(row.style))


def _digest(thread_id: str, text: str) -> str:
    return hashlib.blake2b(f"{thread_id}\x00{text}".encode(), digest_size=8).hexdigest()


class PersonaService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        cache: ProfileCache | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.cfg = settings.persona
        self.cache = cache or ProfileCache(settings.persona.cache_ttl_s)

    # -- the turn pipeline ------------------------------------------------------

    async def load(self, user_id: int) -> ProfileData:
        """The profile steering uses (a user without one gets an empty profile)."""
        cached = self.cache.get(user_id)
        if cached is not None:
            return cached
        epoch = self.cache.epoch
        async with unit_of_work(self.sessions) as session:
            data = _data(user_id, await ProfileRepository(session).get(user_id))
        self.cache.put(data, epoch)
        return data

    async def observe(self, user_id: int, thread_id: str, text: str) -> ProfileData:
        """Update the measured style with one of the user's messages.

        The same message observed again in the same thread (a regenerated
        answer) is not counted twice.
        """
        measured = measure(text)
        digest = _digest(thread_id, text)
        epoch = self.cache.epoch
        cached = self.cache.get(user_id)
        if cached is not None:
            if cached.style.last == digest:
                return cached
            # One conditional UPDATE, which holds if the row is still as cached.
            style = cached.style.observed(measured, self.cfg.ema_alpha, digest)
            async with unit_of_work(self.sessions) as session:
                saved = await ProfileRepository(session).save_observation(
                    user_id, cached.style.messages, style.to_json()
                )
            if saved:
                data = ProfileData(user_id, cached.prefs, style)
                self.cache.put(data, epoch, keep_expiry=True)
                return data
        try:
            data = await self._observe_locked(user_id, measured, digest)
        except IntegrityError:  # a concurrent first observation created the row
            data = await self._observe_locked(user_id, measured, digest)
        except _Repeated:
            return await self.load(user_id)
        self.cache.put(data, epoch)
        return data

    async def _observe_locked(
        self, user_id: int, measured: MessageStyle, digest: str
    ) -> ProfileData:
        """Read the row under a write lock, then update it (or create it)."""
        alpha = self.cfg.ema_alpha
        async with unit_of_work(self.sessions) as session:
            repo = ProfileRepository(session)
            row = await repo.begin_observation(user_id)
            if row is None:
                style = Style().observed(measured, alpha, digest)
                row = await repo.create_observed(user_id, style.to_json())
            else:
                old = Style.from_json(row.style)
                if old.last == digest:
                    raise _Repeated  # rolls the counter back
                style = old.observed(measured, alpha, digest)
                await repo.save_style(user_id, style.to_json())
            prefs = Prefs(row.persona, row.tone, row.verbosity, row.language, row.emoji)
        return ProfileData(user_id, prefs, style)

    # -- the profile API ----------------------------------------------------------

    async def profile(self, user: User) -> ProfileOut:
        async with unit_of_work(self.sessions) as session:
            row = await ProfileRepository(session).get(user.id)
        return self._out(user.id, row)

    async def update(self, user: User, prefs: Preferences) -> ProfileOut:
        """Replace the explicit preferences; measured style is kept. The training consent
        changes only when the body has ``allow_training`` (null: the server's default)."""
        async with unit_of_work(self.sessions) as session:
            repo = ProfileRepository(session)
            row = await repo.set_preferences(user.id, prefs.model_dump())
            if isinstance(prefs, ProfileUpdate) and "allow_training" in prefs.model_fields_set:
                row = await repo.set_training_consent(user.id, prefs.allow_training)
        self.cache.invalidate(user.id)
        return self._out(user.id, row)

    async def set_training_consent(self, user: User, allow: bool | None) -> ProfileOut:
        """May the user's conversations train the model? None: the server's default."""
        async with unit_of_work(self.sessions) as session:
            row = await ProfileRepository(session).set_training_consent(user.id, allow)
        return self._out(user.id, row)

    async def reset(self, user: User) -> None:
        """Forget the profile: explicit preferences and measured style (the training
        consent is a separate choice and stays)."""
        async with unit_of_work(self.sessions) as session:
            await ProfileRepository(session).reset(user.id)
        self.cache.invalidate(user.id)

    async def export(self, user: User) -> dict[str, Any]:
        """Everything stored about the user's profile, for their data export."""
        async with unit_of_work(self.sessions) as session:
            row = await ProfileRepository(session).get(user.id)
        out = self._out(user.id, row).model_dump(mode="json", exclude={"steering"})
        out["stored_style"] = dict(row.style) if row is not None else {}
        return out

    def _out(self, user_id: int, row: Profile | None) -> ProfileOut:
        data = _data(user_id, row)
        llm = self.settings.llm
        plan = steer(data, self.cfg, llm.max_tokens, llm.temperature)
        explicit = Preferences.model_construct(**asdict(data.prefs))
        allow = row.allow_training if row is not None else None
        default = self.settings.training.default_consent
        return ProfileOut(
            explicit=explicit,
            inferred=self._inferred(data.style),
            steering=plan.record,
            updated_at=row.updated_at.isoformat() if row is not None else None,
            allow_training=allow,
            allow_training_effective=default if allow is None else allow,
        )

    def _inferred(self, style: Style) -> InferredStyle:
        values: dict[str, Any] = {}
        for name in METRICS:
            m = style.metric(name)
            if m is not None:
                values[name] = MeasuredValue(value=round(m.value, 4), observations=m.observations)
        lang = style.language()
        if lang is not None:
            values["language"] = MeasuredLanguage(
                value=lang[0], share=round(lang[1], 4), observations=lang[2]
            )
        return InferredStyle(
            messages_observed=style.messages,
            confidence=confidence(style.messages, self.cfg.min_observations),
            **values,
        )


class _Repeated(Exception):
    """The message was already observed; roll back the counter."""
