"""Rate limits (the `limits` library): logins per account and address, actions per user."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from mongars.errors import RateLimited


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
    """A moving-window limit per user id (e.g. chat messages over a WebSocket)."""

    def __init__(self, rate: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._item = parse(rate)

    async def hit(self, user_id: int) -> bool:
        return bool(await self._limiter.hit(self._item, "user", str(user_id)))
