"""API key logic: create (the secret shown once), list, update, revoke, authenticate.

Only the sha256 of a key is stored. Authentication looks the key up by that
hash, so no secret is ever compared byte by byte. The owner's role and status
are read from the database on every request. Services only flush.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mongars.apikeys.models import ApiKey
from mongars.apikeys.repository import ApiKeyRepository
from mongars.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyUpdate
from mongars.auth.models import User
from mongars.db.base import utcnow
from mongars.errors import Conflict, NotAuthenticated, NotFound

KEY_PREFIX = "mg_"
DISPLAY_PREFIX_CHARS = 10
MAX_ACTIVE_KEYS = 50
# last_used_at is written at most this often per key, to keep reads cheap.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """Who a request made with an API key acts as, and what that key allows."""

    user: User
    key: ApiKeyOut


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.keys = ApiKeyRepository(session)

    async def create(self, user: User, body: ApiKeyCreate) -> ApiKeyCreated:
        if await self.keys.count_active(user.id) >= MAX_ACTIVE_KEYS:
            raise Conflict(f"you already hold {MAX_ACTIVE_KEYS} active API keys; revoke one first")
        key = new_key()
        row = await self.keys.add(
            ApiKey(
                user_id=user.id,
                name=body.name,
                prefix=key[:DISPLAY_PREFIX_CHARS],
                key_hash=hash_key(key),
                use_history=body.use_history,
                use_memory=body.use_memory,
                use_persona=body.use_persona,
                created_at=utcnow(),
            )
        )
        return ApiKeyCreated(**_out(row).model_dump(), key=key)

    async def list_keys(self, user: User) -> list[ApiKeyOut]:
        """The caller's keys, newest first, revoked ones included."""
        return [_out(row) for row in await self.keys.list_for_user(user.id)]

    async def update(self, user: User, key_id: int, body: ApiKeyUpdate) -> ApiKeyOut:
        row = await self._own(user, key_id)
        if row.revoked_at is not None:
            raise Conflict("this API key is revoked")
        for field, value in body.model_dump(exclude_none=True).items():
            setattr(row, field, value)
        await self.keys.flush()
        return _out(row)

    async def revoke(self, user: User, key_id: int) -> None:
        """Revoke a key at once; revoking it again keeps the first revocation time."""
        row = await self._own(user, key_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await self.keys.flush()

    async def authenticate(self, key: str) -> KeyPrincipal:
        """Resolve a presented key; every refusal is the same 401 to the client."""
        found = await self.keys.with_owner_by_hash(hash_key(key)) if key else None
        if found is None:
            raise NotAuthenticated("Incorrect API key provided")
        row, user = found
        if row.revoked_at is not None:
            raise NotAuthenticated("this API key has been revoked")
        if not user.is_active:
            raise NotAuthenticated("this account is disabled")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
            row.last_used_at = now
            await self.keys.flush()
        return KeyPrincipal(user=user, key=_out(row))

    async def _own(self, user: User, key_id: int) -> ApiKey:
        row = await self.keys.get_for_user(key_id, user.id)
        if row is None:  # another user's key looks exactly like a missing one
            raise NotFound(f"no API key {key_id}")
        return row


def _out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        use_history=row.use_history,
        use_memory=row.use_memory,
        use_persona=row.use_persona,
    )
