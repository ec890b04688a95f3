"""Politeness: robots.txt rules per origin (RFC 9309) and per-host request pacing.

robots.txt is fetched once per origin and cached.

Parsing and matching are done by ``protego`` (longest match wins, ``*`` and
``$`` wildcards, Crawl-delay), for the fetcher's own user agent. What happens
when the file cannot be read:

- 2xx: the rules apply (the first 512 KiB are parsed, as RFC 9309 allows);
- 4xx (missing, forbidden...): everything is allowed, as RFC 9309 says;
- 5xx, timeout, network error: everything is disallowed for now, because an
  unreachable robots.txt may hide rules the site meant us to follow; the
  verdict is cached for a short time only (``FAILURE_TTL_S``), then retried;
- too many redirects: treated as "unavailable" (allowed), as RFC 9309 permits.

A blocked address is not a robots question: the loader raises and the fetch
fails with ``blocked_address``.

``HostRateLimiter`` spaces the requests to one host (the fetcher passes the
longer of its own interval and the site's Crawl-delay).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from protego import Protego

FAILURE_TTL_S = 60.0
MAX_ROBOTS_BYTES = 512 * 1024


@dataclass(frozen=True)
class RobotsFile:
    """What fetching ``/robots.txt`` gave: ``status`` None means unreachable."""

    status: int | None
    text: str = ""


RobotsLoader = Callable[[str], Awaitable[RobotsFile]]


@dataclass(frozen=True)
class _Rules:
    parser: Protego | None  # None with allow_all: no rules apply
    allow_all: bool
    expires: float


class RobotsCache:
    """Per-origin robots rules with a TTL and a bounded number of origins."""

    def __init__(self, user_agent: str, ttl_s: float = 3600.0, entries: int = 1024) -> None:
        self.user_agent = user_agent
        self.ttl_s = ttl_s
        self.entries = entries
        self._rules: OrderedDict[str, _Rules] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def robots_url(url: httpx.URL) -> str:
        return str(httpx.URL(scheme=url.scheme, host=url.host, port=url.port, path="/robots.txt"))

    async def refusal(self, url: httpx.URL, load: RobotsLoader) -> str | None:
        """None when ``url`` may be fetched, else why not (for the error message)."""
        rules = await self._rules_for(url, load)
        if rules.parser is not None:
            if rules.parser.can_fetch(str(url), self.user_agent):
                return None
            return f"robots.txt of {url.host} disallows {url.path} for {self.user_agent!r}"
        if rules.allow_all:
            return None
        return (
            f"robots.txt of {url.host} could not be read (server error or timeout); "
            "fetching is refused until it can be"
        )

    async def crawl_delay(self, url: httpx.URL, load: RobotsLoader) -> float | None:
        rules = await self._rules_for(url, load)
        if rules.parser is None:
            return None
        delay = rules.parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else None

    async def _rules_for(self, url: httpx.URL, load: RobotsLoader) -> _Rules:
        origin = self.robots_url(url)
        rules = self._fresh(origin)
        if rules is not None:
            return rules
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one download per origin, concurrent fetches wait for it
            rules = self._fresh(origin)
            if rules is None:
                rules = self._interpret(await load(origin))
                self._store(origin, rules)
        self._locks.pop(origin, None)
        return rules

    def _fresh(self, origin: str) -> _Rules | None:
        rules = self._rules.get(origin)
        if rules is None or rules.expires < time.monotonic():
            return None
        self._rules.move_to_end(origin)
        return rules

    def _interpret(self, robots: RobotsFile) -> _Rules:
        now = time.monotonic()
        status = robots.status
        if status is None or status >= 500:
            return _Rules(None, allow_all=False, expires=now + min(self.ttl_s, FAILURE_TTL_S))
        if 200 <= status < 300:
            return _Rules(Protego.parse(robots.text), allow_all=False, expires=now + self.ttl_s)
        return _Rules(None, allow_all=True, expires=now + self.ttl_s)

    def _store(self, origin: str, rules: _Rules) -> None:
        self._rules[origin] = rules
        self._rules.move_to_end(origin)
        while len(self._rules) > self.entries:
            self._rules.popitem(last=False)


class HostRateLimiter:
    """At least ``interval`` seconds between the starts of two requests to one host."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    async def wait(self, host: str, interval: float) -> None:
        if interval <= 0:
            return
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            delay = self._last.get(host, float("-inf")) + interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last[host] = time.monotonic()
        if len(self._last) > 4096:
            self._forget_idle(older_than=time.monotonic() - 3600)

    def _forget_idle(self, older_than: float) -> None:
        for host in [h for h, t in self._last.items() if t < older_than]:
            lock = self._locks.get(host)
            if lock is None or not lock.locked():
                self._last.pop(host, None)
                self._locks.pop(host, None)
