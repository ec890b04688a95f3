"""Hippocampus: remember turns, index them, and recall what matters for a query.

Recall is hybrid: the user's memories ranked by embedding similarity (pgvector
on PostgreSQL, the in-process index on SQLite) and by full-text relevance
(FTS5 BM25 / tsvector), fused by score with time, thread and neighbour terms
(retrieval.py, recall.py). Every query is scoped to one user; nothing crosses users.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.memory.cache import MemoryCache
from mongars.memory.embeddings import Embedder
from mongars.memory.models import Memory
from mongars.memory.recall import MemoryHit, Recall, settle
from mongars.memory.repository import MemoryRepository
from mongars.memory.retrieval import FusionWeights

log = logging.getLogger(__name__)
INGEST_BATCH = 256  # memories embedded (and stored) at a time by ingest()
INDEX_PASSES = 3  # index_pending: passes at most (the indexer comes back later anyway)


@dataclass(frozen=True, slots=True)
class NewMemory:
    text: str
    created_at: datetime | None = None
    kind: str = "note"
    thread_id: str | None = None
    turn_id: int | None = None
    meta: dict[str, object] | None = None
    extract_facts: bool = False  # queue fact extraction (memory.facts setting)


def turn_text(query: str, response: str) -> str:
    return f"User: {query}\nAssistant: {response}"


def _row(user_id: int, item: NewMemory, vector: np.ndarray | None) -> Memory:
    return Memory(
        user_id=user_id,
        kind=item.kind,
        text=item.text,
        thread_id=item.thread_id,
        turn_id=item.turn_id,
        created_at=item.created_at or utcnow(),
        updated_at=utcnow(),
        embedded=vector is not None,
        embedding=vector,
        meta=dict(item.meta or {}),
        source_ids=[],
        facts_status="pending" if item.extract_facts else None,
    )


class MemoryService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        weights: FusionWeights | None = None,
        candidates: int = 50,
        cache: MemoryCache | None = None,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.weights = weights or FusionWeights()
        self.candidates = candidates
        self.cache = cache
        self.recall = Recall(sessions, embedder, self.weights, candidates, cache)
        self.index = self.recall.index
        self.pending = asyncio.Event()  # set when there is something to embed
        # Embeds many batches with a paired peer's help (peers' embedding delegation,
        # docs/peers.md); None: this node alone.
        self.helper: Callable[[list[list[str]]], Awaitable[list[np.ndarray]]] | None = None

    # -- writing --------------------------------------------------------------------

    async def add(
        self,
        user_id: int,
        items: Sequence[NewMemory],
        embed: bool = True,
        vectors: np.ndarray | None = None,
    ) -> list[int]:
        """Store memories; with ``embed`` they are searchable when this returns
        (``vectors``: their embeddings, when the caller already has them)."""
        if vectors is None and embed:
            vectors = await self.embedder.embed([i.text for i in items])
        async with unit_of_work(self.sessions) as session:
            rows = [
                _row(user_id, i, vectors[n] if vectors is not None else None)
                for n, i in enumerate(items)
            ]
            await MemoryRepository(session).add(rows)
            ids = [r.id for r in rows]
        if vectors is None:
            self.pending.set()
        return ids

    async def add_turn(self, user_id: int, item: NewMemory) -> bool:
        """Store a turn's memory, embedded by the indexer; False when the turn has one
        already (the indexer's repair of turns without a memory got there first)."""
        async with unit_of_work(self.sessions) as session:
            stored = await MemoryRepository(session).add_turn_memory(_row(user_id, item, None))
        self.pending.set()
        return stored

    async def ingest(
        self,
        user_id: int,
        items: Sequence[NewMemory],
        batch: int = INGEST_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Store many memories, embedded and searchable when this returns: batch n+1
        is embedded (in the embedder's thread) while batch n is stored, so the
        throughput is that of the slower of the two, not of both in turn.
        ``progress`` is called with the count stored so far after each batch."""
        chunks = [items[n : n + batch] for n in range(0, len(items), batch)]
        ids: list[int] = []
        if self.helper is not None and len(chunks) > 1:  # a paired peer embeds too
            texts = [[i.text for i in chunk] for chunk in chunks]
            for chunk, vectors in zip(chunks, await self.helper(texts), strict=True):
                ids += await self.add(user_id, chunk, vectors=vectors)
                if progress is not None:
                    progress(len(ids))
            return ids
        job: asyncio.Future[np.ndarray] | None = None
        try:
            for n, chunk in enumerate(chunks):
                vectors = await job if job is not None else await self._embed(chunk)
                job = (
                    asyncio.ensure_future(self._embed(chunks[n + 1]))
                    if n + 1 < len(chunks)
                    else None
                )
                ids += await self.add(user_id, chunk, vectors=vectors)
                if progress is not None:
                    progress(len(ids))
        finally:
            settle(job)
        return ids

    async def _embed(self, items: Sequence[NewMemory]) -> np.ndarray:
        return await self.embedder.embed([i.text for i in items])

    async def index_pending(self, batch: int = 64) -> int:
        """Embed memories stored without an embedding (and turns with no memory yet)."""
        done = 0
        async with unit_of_work(self.sessions) as session:
            repo = MemoryRepository(session)
            for turn in await repo.unindexed_turns(500):
                await repo.add_turn_memory(
                    Memory(
                        user_id=turn.user_id,
                        kind="turn",
                        text=turn_text(turn.query, turn.response),
                        thread_id=turn.thread_id,
                        turn_id=turn.id,
                        created_at=turn.created_at,
                        updated_at=utcnow(),
                        embedded=False,
                        meta={},
                        source_ids=[],
                    )
                )
        for _ in range(INDEX_PASSES):  # a memory edited while embedded is left pending
            count = await self._index_pass(batch)
            if not count:
                break
            done += count
        return done

    async def has_pending(self) -> bool:
        """Memories without an embedding, or turns without a memory, wait."""
        if await self._pending(1, 0):
            return True
        async with unit_of_work(self.sessions) as session:
            return bool(await MemoryRepository(session).unindexed_turns(1))

    async def _index_pass(self, batch: int) -> int:
        """One pass over the pending memories, in id order: batch n+1 is read and
        embedded while batch n is stored. Returns how many were embedded (or found
        edited since they were read: left for the next pass)."""
        done = 0
        rows = await self._pending(batch, 0)
        job = asyncio.ensure_future(self.embedder.embed([t for _, t in rows])) if rows else None
        try:
            while rows and job is not None:
                vectors = await job
                following = await self._pending(batch, rows[-1][0])
                job = (
                    asyncio.ensure_future(self.embedder.embed([t for _, t in following]))
                    if following
                    else None
                )
                async with unit_of_work(self.sessions) as session:
                    ids, texts = [i for i, _ in rows], [t for _, t in rows]
                    await MemoryRepository(session).set_embeddings(ids, vectors, texts)
                done += len(rows)
                rows = following
        finally:
            settle(job)
        return done

    async def _pending(self, batch: int, after_id: int) -> list[tuple[int, str]]:
        async with unit_of_work(self.sessions) as session:
            return await MemoryRepository(session).pending_texts(batch, after_id)

    # -- recall ---------------------------------------------------------------------

    async def search(
        self,
        user_id: int,
        query: str,
        k: int = 10,
        exclude_turn_ids: Sequence[int] = (),
        thread_id: str | None = None,
    ) -> list[MemoryHit]:
        """The user's ``k`` most relevant memories for ``query`` (see recall.py)."""
        if not query.strip():
            return []
        return await self.recall.search(user_id, query, k, exclude_turn_ids, thread_id)

    async def invalidate(self, user_id: int) -> None:
        """Drop the user's cached results and in-process index now (after an edit or a
        forget: the epoch already makes them unreachable; this also erases them)."""
        self.index.forget(user_id)
        if self.cache is not None:
            await self.cache.invalidate_user(user_id)

    async def _dense(self, repo: MemoryRepository, user_id: int, vector: np.ndarray) -> list[int]:
        return [i for i, _ in await self.recall.dense(repo, user_id, vector, self.candidates)]
