"""Which adapter answers a turn: the active version, or the canary for its share of
generation ids. Each process keeps the pointer for at most ``POINTER_TTL_S`` (its
``generation`` tells a change) and loads a new active adapter into its own model as
soon as it sees one, before an answer needs it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.adapters.repository import AdapterRepository
from mongars.db.engine import unit_of_work
from mongars.llm.base import LLMProvider

log = logging.getLogger(__name__)
POINTER_TTL_S = 2.0  # how stale another process's change may look here


@dataclass(frozen=True)
class Choice:
    """The adapter one answer uses."""

    version: int
    sha256: str
    canary: bool


@dataclass(frozen=True)
class _Snapshot:
    generation: int
    active: tuple[int, str] | None
    canary: tuple[int, str] | None
    share: float


def canary_bucket(key: str) -> float:
    """A stable, uniform number in [0, 1) for a generation id."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


class AdapterSelector:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        llm: LLMProvider | None,
        clock: Any = time.monotonic,
    ) -> None:
        self.sessions, self.llm, self.clock = sessions, llm, clock
        self._snapshot: _Snapshot | None = None
        self._read_at = float("-inf")
        self._refresh_lock = asyncio.Lock()

    def active_sha(self) -> str | None:
        """The active version's sha256 as last read (no database access)."""
        snap = self._snapshot
        return snap.active[1] if snap is not None and snap.active is not None else None

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    async def choose(self, generation_id: str) -> Choice | None:
        """The adapter for one answer: the canary for its share of generation ids (a
        stable hash), else the active version; None for the base model, or when the
        provider cannot load adapters (Ollama, OpenAI-compatible servers)."""
        if self.llm is None or not self.llm.loads_adapters:
            return None
        snap = await self._current()
        if snap.canary is not None and generation_id and canary_bucket(generation_id) < snap.share:
            return Choice(snap.canary[0], snap.canary[1], canary=True)
        if snap.active is not None:
            return Choice(snap.active[0], snap.active[1], canary=False)
        return None

    async def _current(self) -> _Snapshot:
        if self._snapshot is not None and self.clock() - self._read_at < POINTER_TTL_S:
            return self._snapshot
        async with self._refresh_lock:
            if self._snapshot is not None and self.clock() - self._read_at < POINTER_TTL_S:
                return self._snapshot
            async with unit_of_work(self.sessions) as session:
                repo = AdapterRepository(session)
                p = await repo.pointer()
                found = await repo.versions(
                    {i for i in (p.active_id, p.canary_id) if i is not None}
                )
                snap = _Snapshot(
                    p.generation,
                    (p.active_id, found[p.active_id].sha256) if p.active_id in found else None,
                    (p.canary_id, found[p.canary_id].sha256) if p.canary_id in found else None,
                    p.canary_share,
                )
            changed = self._snapshot is None or snap.generation != self._snapshot.generation
            self._snapshot, self._read_at = snap, self.clock()
            if changed:
                await self._preload(snap)
            return snap

    async def _preload(self, snap: _Snapshot) -> None:
        """Load the active adapter into this process's model now, between answers."""
        use = getattr(self.llm, "use_adapter", None)
        if use is None:
            return
        try:
            took = await use(snap.active[1] if snap.active else None)
            log.info("adapter %s in place in %.3f s", snap.active, took)
        except Exception:  # a damaged file: the turns that need it report the error
            log.exception("could not load adapter %s", snap.active)
