"""Memory cache tiers (LRU -> Redis -> disk), their metrics, and invalidation on
edit and forget through the user's memory epoch."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from mongars.auth.service import AuthService
from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.memory.cache import MemoryCache
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory
from mongars.observability.metrics import Metrics, create_metrics
from mongars.settings import AuthSettings


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def lookups(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    """memory.cache.lookups as Prometheus exposes it: (cache, tier, outcome) -> count."""
    found: dict[tuple[str, str, str], float] = {}
    for line in metrics.render().decode().splitlines():
        if line.startswith("memory_cache_lookups_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["cache"], labels["tier"], labels["outcome"])
            found[key] = float(line.rsplit(" ", 1)[1])
    return found


class Calls:
    def __init__(self) -> None:
        self.n = 0

    async def vector(self) -> np.ndarray:
        self.n += 1
        return np.arange(384, dtype=np.float32) / 384


def test_query_vectors_go_through_lru_then_disk_with_metrics_per_tier(tmp_path: Path) -> None:
    async def scenario() -> None:
        metrics = create_metrics()
        calls = Calls()
        first = MemoryCache(disk=tmp_path / "c.sqlite3", counter=metrics.memory_cache)
        v1 = await first.vector("minilm", "where do I live?", calls.vector)
        v2 = await first.vector("minilm", "where do I live?", calls.vector)
        assert calls.n == 1 and np.array_equal(v1, v2)
        await first.close()
        # A new process: empty LRU, same disk file.
        second = MemoryCache(disk=tmp_path / "c.sqlite3", counter=metrics.memory_cache)
        v3 = await second.vector("minilm", "where do I live?", calls.vector)
        assert calls.n == 1 and np.array_equal(v1, v3) and v3.dtype == np.float32
        await second.vector("minilm", "where do I live?", calls.vector)  # promoted to LRU
        await second.vector("other-model", "where do I live?", calls.vector)  # another key
        assert calls.n == 2
        await second.close()
        counts = lookups(metrics)
        assert counts[("embedding", "memory", "hit")] == 2
        assert counts[("embedding", "memory", "miss")] == 3
        assert counts[("embedding", "disk", "hit")] == 1
        assert counts[("embedding", "disk", "miss")] == 2
        metrics.shutdown()

    run(scenario())


def test_redis_tier_is_shared_between_processes(redis_url: str) -> None:
    async def scenario() -> None:
        import redis.asyncio as aioredis

        metrics = create_metrics()
        calls = Calls()
        a = MemoryCache(redis=aioredis.Redis.from_url(redis_url), counter=metrics.memory_cache)
        b = MemoryCache(redis=aioredis.Redis.from_url(redis_url), counter=metrics.memory_cache)
        await a.vector("minilm", "redis shared text", calls.vector)
        await a.flush()  # the shared tiers are written in the background
        vector = await b.vector("minilm", "redis shared text", calls.vector)
        assert calls.n == 1 and vector.shape == (384,)
        key = MemoryCache.results_key("3.1", "q", 5)
        await a.store_results(7, "3.1", key, [{"id": 1, "text": "secret plan"}])
        assert await b.results(7, "3.1", key) == [{"id": 1, "text": "secret plan"}]
        await a.invalidate_user(7)
        fresh = MemoryCache(redis=aioredis.Redis.from_url(redis_url))
        assert await fresh.results(7, "3.1", key) is None
        for cache in (a, b, fresh):
            await cache.close()
        counts = lookups(metrics)
        assert counts[("embedding", "redis", "hit")] == 1
        assert counts[("results", "redis", "hit")] == 1
        metrics.shutdown()

    run(scenario())


def test_an_unreachable_redis_is_a_miss_not_an_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        import redis.asyncio as aioredis

        from tests.conftest import free_port

        broken = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
        cache = MemoryCache(redis=broken, disk=tmp_path / "c.sqlite3")
        calls = Calls()
        await cache.vector("m", "text", calls.vector)
        await cache.flush()  # the shared tiers are written in the background
        cache.lru = type(cache.lru)(16)  # forget in-process: next lookup goes below
        await cache.vector("m", "text", calls.vector)
        assert calls.n == 1  # served by the disk tier despite Redis being down
        await cache.close()

    run(scenario())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    return url


def test_results_are_cached_per_epoch_and_edits_and_forgets_invalidate_them(
    sqlite_url: str, redis_url: str, tmp_path: Path, embedder: Any
) -> None:
    async def scenario() -> None:
        import redis.asyncio as aioredis

        engine = create_engine(sqlite_url)
        sessions = create_session_factory(engine)
        async with unit_of_work(sessions) as s:
            user = await AuthService(s, AuthSettings(), "x").create_user(
                "carol", "password123", is_admin=False
            )
        metrics = create_metrics()
        cache = MemoryCache(
            redis=aioredis.Redis.from_url(redis_url),
            disk=tmp_path / "cache.sqlite3",
            counter=metrics.memory_cache,
        )
        memory = MemoryService(sessions, embedder, cache=cache)
        [locker, _] = await memory.add(
            user.id,
            [NewMemory("My locker code is 4321."), NewMemory("I like green tea in the morning.")],
        )
        first = await memory.search(user.id, "locker code", k=5)
        assert first[0].id == locker
        again = await memory.search(user.id, "locker code", k=5)
        assert again == first
        assert lookups(metrics)[("results", "memory", "hit")] == 1

        async with unit_of_work(sessions) as s:  # an edit, as the memory API does it
            repo = MemoryRepository(s)
            row = await repo.get(user.id, locker)
            assert row is not None
            await repo.update_text(row, "My locker code changed to 9876.")
        edited = await memory.search(user.id, "locker code", k=5)
        assert edited[0].text == "My locker code changed to 9876."

        async with unit_of_work(sessions) as s:  # forget it
            await MemoryRepository(s).delete(user.id, [locker])
        after = await memory.search(user.id, "locker code", k=5)
        assert all("locker" not in h.text for h in after)
        await cache.flush()  # the shared tiers are written after a search answers
        # No tier still holds the forgotten text.
        stored = redis.Redis.from_url(redis_url).hgetall(f"mongars:memory:results:{user.id}")
        assert stored and not any(b"locker" in v for v in stored.values())
        import sqlite3

        disk = sqlite3.connect(tmp_path / "cache.sqlite3").execute("SELECT value FROM entries")
        assert not any(b"locker" in bytes(r[0]) for r in disk.fetchall())
        assert not any("locker" in str(v) for v in cache.lru._data.values())
        await cache.close()
        await engine.dispose()
        metrics.shutdown()

    run(scenario())
