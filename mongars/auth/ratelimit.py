"""Rate limits (the `limits` library): logins per account and address, costly actions
per user (chat, uploads, training). Counted in memory, per process."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from mongars.errors import RateLimited
from mongars.settings import RateLimitSettings


class LoginLimiter:
    def __init__(self, per_account: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._account = parse(per_account)
        self._address = parse(per_address)

    async def hit(self, username: str, address: str) -> None:
        """Count one attempt; raise RateLimited (429 + Retry-After) past either limit."""
        checks = ((self._address, "addr", address), (self._account, "acct", username.lower()))
        for item, kind, key in checks:
            if not await self._limiter.hit(item, "login", kind, key):
                stats = await self._limiter.get_window_stats(item, "login", kind, key)
                retry = math.ceil(stats.reset_time - time.time())
                scope = "address" if kind == "addr" else "account"
                raise RateLimited(
                    f"too many login attempts for this {scope}; try again in {max(1, retry)} s",
                    retry_after=retry,
                )


class UserRateLimiter:
    """A moving-window limit per user id; ``rate`` "" (or None) means no limit."""

    def __init__(self, rate: str | None) -> None:
        self.rate = rate or ""
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = parse_many(self.rate) if self.rate else []

    async def hit(self, user_id: int) -> bool:
        """Count one action unless a window is full (then nothing is counted)."""
        return await self._refused(str(user_id)) is None

    async def check(self, user_id: int, what: str) -> None:
        """Count one action; raise RateLimited (429 + Retry-After) past the limit."""
        key = str(user_id)
        item = await self._refused(key)
        if item is None:
            return
        stats = await self._limiter.get_window_stats(item, "user", key)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"too many {what}: the limit is {self.rate} per user; try again in {retry} s",
            retry_after=retry,
        )

    async def _refused(self, key: str) -> RateLimitItem | None:
        for item in self._items:  # test every window first: a refusal counts nowhere
            if not await self._limiter.test(item, "user", key):
                return item
        for item in self._items:
            await self._limiter.hit(item, "user", key)
        return None


class UserLimits:
    """The per-user limits on costly routes, shared by every route of a kind (one
    budget for chat over REST, SSE, /v1 and the WebSocket)."""

    def __init__(self, settings: RateLimitSettings) -> None:
        on = settings.enabled
        self.chat = UserRateLimiter(settings.chat if on else None)
        self.upload = UserRateLimiter(settings.upload if on else None)
        self.training = UserRateLimiter(settings.training if on else None)
