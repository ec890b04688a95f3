"""Memory caches in tiers: in-process LRU, then Redis (when configured), then disk.

Two caches use them: query embeddings (keyed by the model and a hash of the
text; stored as raw float32 bytes) and hot search results (JSON, grouped per
user and keyed by the user's memory epoch, so any change to the user's memories
makes older results unreachable). Nothing is pickled. A hit in a lower tier is
copied into the tiers above it. Every lookup is counted per cache, tier and
outcome (``memory.cache.lookups``).

Forgetting must reach every cache: results are stored per user, and the first
time a newer epoch of a user is seen, that user's older results are dropped
from all tiers (``invalidate_user`` does the same at once). A tier that fails
(Redis down, disk full) counts as a miss; search never fails because of a cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)
PREFIX = "mongars:memory:"


class Counter(Protocol):
    def add(self, amount: int, attributes: dict[str, str]) -> None: ...


class LRUTier:
    name = "memory"

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._data: OrderedDict[tuple[str, str, str], tuple[float, Any]] = OrderedDict()

    async def get(self, ns: str, group: str, key: str) -> Any:
        item = self._data.get((ns, group, key))
        if item is None or item[0] < time.time():
            return None
        self._data.move_to_end((ns, group, key))
        return item[1]

    async def set(self, ns: str, group: str, key: str, value: Any, ttl_s: float) -> None:
        if self.entries <= 0:
            return
        self._data[(ns, group, key)] = (time.time() + ttl_s, value)
        self._data.move_to_end((ns, group, key))
        while len(self._data) > self.entries:
            self._data.popitem(last=False)

    async def drop_group(self, ns: str, group: str, keep: str | None = None) -> None:
        """Drop a group's entries (those whose key does not start with ``keep``)."""
        for k in [k for k in self._data if k[:2] == (ns, group)]:
            if keep is None or not k[2].startswith(keep):
                del self._data[k]


class RedisTier:
    """One hash per (cache, group) so a user's results go with one DEL."""

    name = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client

    def _hash(self, ns: str, group: str) -> str:
        return f"{PREFIX}{ns}:{group}"

    async def get(self, ns: str, group: str, key: str) -> bytes | None:
        value = await self.client.hget(self._hash(ns, group), key)
        return bytes(value) if value is not None else None

    async def set(self, ns: str, group: str, key: str, value: bytes, ttl_s: float) -> None:
        name = self._hash(ns, group)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(name, key, value)
            pipe.expire(name, max(1, int(ttl_s)))
            await pipe.execute()

    async def drop_group(self, ns: str, group: str, keep: str | None = None) -> None:
        name = self._hash(ns, group)
        if keep is None:
            await self.client.delete(name)
            return
        stale = [f for f in await self.client.hkeys(name) if not bytes(f).startswith(keep.encode())]
        if stale:
            await self.client.hdel(name, *stale)


class DiskTier:
    """A small SQLite file (stdlib sqlite3, used from worker threads)."""

    name = "disk"

    def __init__(self, path: Path, max_entries: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._writes = 0
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # a cache: a crash may lose the last writes, so no flush to disk on each one
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (ns TEXT, grp TEXT, key TEXT, value BLOB, "
            "expires REAL, PRIMARY KEY (ns, grp, key))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires)")
        # Reads are point lookups in a local file: done in the event loop's thread
        # (tens of microseconds; in WAL mode a reader never waits for the writer),
        # where handing each to a worker thread cost more on a busy machine (up to a
        # few ms before a search could go on). A read that would wait is a miss.
        self._reader = sqlite3.connect(path, check_same_thread=False, timeout=0.01)

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    async def get(self, ns: str, group: str, key: str) -> bytes | None:
        row = self._reader.execute(
            "SELECT value FROM entries WHERE ns = ? AND grp = ? AND key = ? AND expires > ?",
            (ns, group, key, time.time()),
        ).fetchone()
        return bytes(row[0]) if row else None

    async def set(self, ns: str, group: str, key: str, value: bytes, ttl_s: float) -> None:
        await asyncio.to_thread(
            self._run,
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
            (ns, group, key, value, time.time() + ttl_s),
        )
        self._writes += 1
        if self._writes % 256 == 0:
            await asyncio.to_thread(self._prune)

    def _prune(self) -> None:
        self._run("DELETE FROM entries WHERE expires <= ?", (time.time(),))
        self._run(
            "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries ORDER BY expires "
            "LIMIT max(0, (SELECT count(*) FROM entries) - ?))",
            (self.max_entries,),
        )

    async def drop_group(self, ns: str, group: str, keep: str | None = None) -> None:
        sql = "DELETE FROM entries WHERE ns = ? AND grp = ? AND substr(key, 1, ?) != ?"
        prefix = keep or "\x00"  # no key starts with NUL: drop everything
        await asyncio.to_thread(self._run, sql, (ns, group, len(prefix), prefix))

    def close(self) -> None:
        self._reader.close()
        self._db.close()


class MemoryCache:
    def __init__(
        self,
        lru_entries: int = 4096,
        redis: Any = None,
        disk: Path | None = None,
        disk_entries: int = 100_000,
        results_ttl_s: float = 600.0,
        vectors_ttl_s: float = 7 * 86400.0,
        counter: Counter | None = None,
    ) -> None:
        self.lru = LRUTier(lru_entries)
        self.shared: list[RedisTier | DiskTier] = []
        if redis is not None:
            self.shared.append(RedisTier(redis))
        if disk is not None:
            self.shared.append(DiskTier(disk, disk_entries))
        self.results_ttl_s = results_ttl_s
        self.vectors_ttl_s = vectors_ttl_s
        self.counter = counter
        self._epochs: dict[int, str] = {}  # the newest epoch seen per user
        self._writes: set[asyncio.Future[None]] = set()  # shared-tier writes under way

    def _count(self, cache: str, tier: str, hit: bool) -> None:
        if self.counter is not None:
            self.counter.add(1, {"cache": cache, "tier": tier, "outcome": "hit" if hit else "miss"})

    async def _get(self, ns: str, group: str, key: str) -> tuple[Any, int]:
        """(raw value, index of the shared tier it came from; -1 for the LRU)."""
        value = await self.lru.get(ns, group, key)
        self._count(ns, "memory", value is not None)
        if value is not None:
            return value, -1
        for n, tier in enumerate(self.shared):
            try:
                raw = await tier.get(ns, group, key)
            except Exception as exc:  # a broken tier is a miss
                log.warning("memory cache tier %s failed: %s", tier.name, exc)
                raw = None
            self._count(ns, tier.name, raw is not None)
            if raw is not None:
                return raw, n
        return None, len(self.shared)

    async def _set(self, ns: str, group: str, key: str, raw: bytes, below: int, ttl: float) -> None:
        for tier in self.shared[:below]:
            try:
                await tier.set(ns, group, key, raw, ttl)
            except Exception as exc:
                log.warning("memory cache tier %s failed: %s", tier.name, exc)

    # -- query embeddings ---------------------------------------------------------------

    async def vector(
        self, model: str, text: str, compute: Callable[[], Awaitable[np.ndarray]]
    ) -> np.ndarray:
        key = hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()
        value, tier = await self._get("embedding", "", key)
        if tier == -1:
            return value  # type: ignore[no-any-return]
        vector = (
            np.frombuffer(value, dtype=np.float32).copy()
            if value is not None
            else np.asarray(await compute(), dtype=np.float32)
        )
        await self.lru.set("embedding", "", key, vector, self.vectors_ttl_s)
        # the shared tiers are written after the vector is returned: a search waits
        # for its query's embedding, not for a Redis or disk write of it
        self._later(self._set("embedding", "", key, vector.tobytes(), tier, self.vectors_ttl_s))
        return vector

    def _later(self, write: Coroutine[Any, Any, None]) -> None:
        """Run a cache write in the background (kept, so flush() and close() wait)."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait for the background writes under way."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # -- search results -----------------------------------------------------------------

    @staticmethod
    def results_key(epoch: str, *parts: object) -> str:
        digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        return f"{epoch}:{digest}"

    async def results(self, user_id: int, epoch: str, key: str) -> list[dict[str, Any]] | None:
        await self._check_epoch(user_id, epoch)
        value, tier = await self._get("results", str(user_id), key)
        if value is None or tier == -1:
            return value  # type: ignore[no-any-return]
        hits: list[dict[str, Any]] = json.loads(value)
        await self.lru.set("results", str(user_id), key, hits, self.results_ttl_s)
        await self._set("results", str(user_id), key, value, tier, self.results_ttl_s)
        return hits

    async def store_results(
        self, user_id: int, epoch: str, key: str, hits: list[dict[str, Any]]
    ) -> None:
        await self._check_epoch(user_id, epoch)
        await self.lru.set("results", str(user_id), key, hits, self.results_ttl_s)
        if self.shared:  # written after the search answered (see _drop)
            raw = json.dumps(hits).encode()
            ttl, below = self.results_ttl_s, len(self.shared)
            self._later(self._set("results", str(user_id), key, raw, below, ttl))

    async def _check_epoch(self, user_id: int, epoch: str) -> None:
        """The first time this process sees a user, or a newer epoch of theirs, results
        of other epochs are dropped everywhere (they may hold forgotten text)."""
        if self._epochs.get(user_id) != epoch:
            await self._drop("results", str(user_id), f"{epoch}:")
            self._epochs[user_id] = epoch

    async def invalidate_user(self, user_id: int) -> None:
        """Drop every cached result of the user from every tier, now."""
        self._epochs.pop(user_id, None)
        await self._drop("results", str(user_id), None)

    async def _drop(self, ns: str, group: str, keep: str | None) -> None:
        await self.lru.drop_group(ns, group, keep)
        if self.shared:
            await self.flush()  # a write under way lands before the drop, not after
        for tier in self.shared:
            try:
                await tier.drop_group(ns, group, keep)
            except Exception as exc:
                log.warning("memory cache tier %s failed: %s", tier.name, exc)

    async def close(self) -> None:
        await self.flush()
        for tier in self.shared:
            if isinstance(tier, DiskTier):
                tier.close()
            else:
                await tier.client.aclose()


def create_cache(settings: Any, counter: Counter | None = None) -> MemoryCache:
    """The tiers the settings ask for: Redis when ``redis_url`` is set, disk unless
    ``memory.cache_disk`` is off (a file under ``<data_dir>/cache``)."""
    cfg = settings.memory
    redis = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(settings.redis_url)
    return MemoryCache(
        lru_entries=cfg.cache_entries,
        redis=redis,
        disk=settings.data_dir / "cache" / "memory.sqlite3" if cfg.cache_disk else None,
        disk_entries=cfg.cache_disk_entries,
        results_ttl_s=cfg.cache_results_ttl_s,
        vectors_ttl_s=cfg.cache_embeddings_ttl_s,
        counter=counter,
    )
