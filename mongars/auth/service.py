"""Account logic: registration, login, password changes, roles. Services only flush."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import User
from mongars.auth.repository import UserRepository
from mongars.auth.schemas import UserOut
from mongars.auth.security import (
    DUMMY_HASH,
    TokenClaims,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from mongars.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from mongars.settings import AuthSettings


class AuthService:
    def __init__(self, session: AsyncSession, settings: AuthSettings, secret: str) -> None:
        self.users = UserRepository(session)
        self.settings = settings
        self.secret = secret

    def _check_password(self, password: str) -> None:
        if len(password) < self.settings.min_password_length:
            raise InvalidInput(
                f"password must be at least {self.settings.min_password_length} characters"
            )

    async def create_user(self, username: str, password: str, *, is_admin: bool) -> UserOut:
        self._check_password(password)
        if await self.users.by_username(username) is not None:
            raise Conflict(f"username {username!r} is taken")
        user = await self.users.add(username, hash_password(password), is_admin=is_admin)
        return _out(user)

    async def setup_admin(
        self, expected_token: str | None, token: str, username: str, password: str
    ) -> UserOut:
        """Create the first admin with the one-time token printed at start-up."""
        if expected_token is None or await self.users.count() > 0:
            raise Forbidden("setup is already done: log in, or ask an admin for an account")
        if not secrets.compare_digest(expected_token.encode(), token.encode()):
            raise Forbidden("invalid setup token (see the server's start-up log)")
        return await self.create_user(username, password, is_admin=True)

    async def authenticate(self, username: str, password: str) -> User:
        user = await self.users.by_username(username)
        if user is None:
            verify_password(password, DUMMY_HASH)
            raise NotAuthenticated("Incorrect username or password")
        if not verify_password(password, user.password_hash):
            raise NotAuthenticated("Incorrect username or password")
        if not user.is_active:
            raise Forbidden("this account is disabled")
        return user

    def issue_token(self, user: User) -> tuple[str, str]:
        ttl = timedelta(minutes=self.settings.token_ttl_minutes)
        token, expires = create_token(self.secret, user.id, user.token_version, ttl)
        return token, expires.isoformat()

    async def user_from_token(self, token: str) -> tuple[User, TokenClaims]:
        """Resolve a bearer token; the role and status come from the database each time."""
        claims = decode_token(self.secret, token)
        user = await self.users.get(claims.user_id)
        if user is None or claims.version != user.token_version:
            raise NotAuthenticated("Token revoked")
        if not user.is_active:
            raise NotAuthenticated("this account is disabled")
        if await self.users.is_revoked(claims.jti):
            raise NotAuthenticated("Token revoked")
        return user, claims

    async def logout(self, claims: TokenClaims) -> None:
        await self.users.revoke(claims.jti, claims.expires_at)

    async def change_password(self, user: User, old: str, new: str) -> None:
        if not verify_password(old, user.password_hash):
            raise Forbidden("the old password is incorrect")
        self._check_password(new)
        user.password_hash = hash_password(new)
        user.token_version += 1  # every token issued before now stops working
        await self.users.session.flush()

    async def list_usernames(self) -> list[str]:
        return await self.users.list_usernames()

    async def list_users(self) -> list[UserOut]:
        return [_out(u) for u in await self.users.list_all()]

    async def _named(self, username: str) -> User:
        user = await self.users.by_username(username)
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    async def set_admin(self, username: str, is_admin: bool) -> UserOut:
        user = await self._named(username)
        user.is_admin = is_admin
        await self.users.session.flush()
        return _out(user)

    async def set_active(self, username: str, is_active: bool) -> UserOut:
        user = await self._named(username)
        user.is_active = is_active
        await self.users.session.flush()
        return _out(user)

    async def reset_password(self, username: str, password: str) -> UserOut:
        user = await self._named(username)
        self._check_password(password)
        user.password_hash = hash_password(password)
        user.token_version += 1
        await self.users.session.flush()
        return _out(user)


def _out(user: User) -> UserOut:
    return UserOut(
        id=user.id, username=user.username, is_admin=user.is_admin, is_active=user.is_active
    )
