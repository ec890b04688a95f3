"""Recall: the I/O around the hybrid ranking of retrieval.py.

One search: the query's embedding (cached; computed while the database answers
the rest), the user's memory epoch (one row), then, unless the result is cached
for that epoch, the best full-text matches (FTS5 BM25 / tsvector, very common
words left out), the best dense matches, the candidates' times and threads,
the turns next to the strongest hits (candidates.py: in-process on SQLite, SQL
on PostgreSQL), the final ranking, and the rows of the hits returned. Every
query is scoped to one user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import reads
from mongars.memory.cache import MemoryCache
from mongars.memory.candidates import CandidateSource, IndexCandidates, SqlCandidates
from mongars.memory.embeddings import Embedder
from mongars.memory.index import DenseIndex
from mongars.memory.repository import MemoryRepository, MemoryRow
from mongars.memory.retrieval import FusionWeights, Scorer, date_spans
from mongars.memory.terms import TermStats


@dataclass(frozen=True, slots=True)
class MemoryHit:
    id: int
    kind: str
    text: str
    created_at: datetime
    turn_id: int | None
    thread_id: str | None
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "turn_id": self.turn_id,
            "thread_id": self.thread_id,
            "score": self.score,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryHit:
        return cls(**{**data, "created_at": datetime.fromisoformat(data["created_at"])})


@dataclass(slots=True)
class Found:
    """A search's candidates: the query vector, (id, cosine) of the nearest, (id,
    BM25) of the full-text matches, and (PostgreSQL) the rows read with them, each
    with its cosine."""

    vector: np.ndarray
    dense: list[tuple[int, float]]
    text: list[tuple[int, float]]
    rows: dict[int, tuple[MemoryRow, float]]


class Recall:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        weights: FusionWeights,
        candidates: int,
        cache: MemoryCache | None,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.weights = weights
        self.candidates = candidates
        self.cache = cache
        self.index = DenseIndex()
        self._indexed = IndexCandidates(self.index)
        self._sql = SqlCandidates()
        self.terms = TermStats(weights.common_term_share)

    async def query_vector(self, query: str) -> np.ndarray:
        async def compute() -> np.ndarray:
            return (await self.embedder.embed([query]))[0]

        if self.cache is None:
            return await compute()
        return await self.cache.vector(self.embedder.model_id, query, compute)

    async def search(
        self,
        user_id: int,
        query: str,
        k: int,
        exclude_turn_ids: Sequence[int] = (),
        thread_id: str | None = None,
    ) -> list[MemoryHit]:
        excluded = sorted(set(exclude_turn_ids))
        # The query is embedded (in the embedder's thread) while the database answers
        # the rest: the epoch, a cached result, the full-text matches, which then
        # overlap the nearest vectors (see _candidates).
        embedding = asyncio.ensure_future(self.query_vector(query))
        try:
            async with reads(self.sessions) as session:
                repo = MemoryRepository(session)
                epochs = await repo.epochs(user_id)
                epoch = f"{epochs[0]}.{epochs[1]}"
                key = MemoryCache.results_key(epoch, query, k, excluded, thread_id, self.weights)
                if self.cache is not None:
                    cached = await self.cache.results(user_id, epoch, key)
                    if cached is not None:
                        return [MemoryHit.from_json(h) for h in cached]
                hits = await self._rank(
                    repo, user_id, query, embedding, epochs, k, set(excluded), thread_id
                )
        finally:
            settle(embedding)
        if self.cache is not None:
            await self.cache.store_results(user_id, epoch, key, [h.to_json() for h in hits])
        return hits

    async def _text(
        self, repo: MemoryRepository, user_id: int, query: str
    ) -> list[tuple[int, float]]:
        plan = await self.terms.plan(repo, user_id, query, self.index.size(user_id))
        return await repo.text_scored(
            user_id, query, self.candidates, plan.terms, plan.weights, plan.scored
        )

    async def _text_apart(
        self, user_id: int, query: str, embedding: asyncio.Future[np.ndarray]
    ) -> tuple[list[tuple[int, float]], dict[int, tuple[MemoryRow, float]]]:
        """PostgreSQL, on a connection of its own: the full-text matches (while the
        query is embedded), then their rows and cosines."""
        async with reads(self.sessions) as session:
            repo = MemoryRepository(session)
            found = await self._text(repo, user_id, query)
            if not found:
                return found, {}
            scored = await repo.scored_rows(user_id, [i for i, _ in found], await embedding)
            return found, {m.id: (m, cos) for m, cos in scored}

    def _source(self, repo: MemoryRepository) -> CandidateSource:
        return self._sql if repo.dialect == "postgresql" else self._indexed

    async def dense(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        k: int,
        epochs: tuple[int, int] | None = None,
    ) -> list[tuple[int, float]]:
        """(id, cosine) of the user's nearest memories, best first."""
        return await self._source(repo).dense(repo, user_id, vector, k, epochs)

    async def _candidates(
        self,
        repo: MemoryRepository,
        user_id: int,
        query: str,
        embedding: asyncio.Future[np.ndarray],
        epochs: tuple[int, int],
    ) -> Found:
        """The nearest and the full-text matches, the two searches overlapped: on
        PostgreSQL the full text runs on a second connection while this one asks
        pgvector (each reads its candidates' rows); on SQLite it runs on this
        connection while the in-process index is searched in worker threads."""
        if repo.dialect == "postgresql":
            text_job = asyncio.ensure_future(self._text_apart(user_id, query, embedding))
            try:
                vector = await embedding
                nearest = await repo.dense_rows(user_id, vector, self.candidates)
                text, rows = await text_job
            finally:
                settle(text_job)
            rows |= {m.id: (m, cos) for m, cos in nearest}
            return Found(vector, [(m.id, cos) for m, cos in nearest], text, rows)
        await self.index.refresh(repo, user_id, epochs)

        async def nearest_ids() -> tuple[np.ndarray, list[tuple[int, float]]]:
            vector = await embedding
            return vector, await self.index.nearest(user_id, vector, self.candidates)

        # both run to the end (the full text uses the session) before an error is raised
        found, text = await asyncio.gather(
            nearest_ids(), self._text(repo, user_id, query), return_exceptions=True
        )
        if isinstance(found, BaseException):
            raise found
        if isinstance(text, BaseException):
            raise text
        return Found(found[0], found[1], text, {})

    async def _rank(
        self,
        repo: MemoryRepository,
        user_id: int,
        query: str,
        embedding: asyncio.Future[np.ndarray],
        epochs: tuple[int, int],
        k: int,
        excluded: set[int],
        thread_id: str | None,
    ) -> list[MemoryHit]:
        source = self._source(repo)
        matches = await self._candidates(repo, user_id, query, embedding, epochs)
        vector, dense, text = matches.vector, matches.dense, matches.text
        ids = list(dict.fromkeys([*(i for i, _ in dense), *(i for i, _ in text)]))
        # every candidate gets both scores: cosines of text-only matches are looked up
        pool, rows = await source.pool(repo, user_id, vector, ids, dict(dense), matches.rows)
        for i, score in text:
            if i in pool:
                pool[i].text = score
        now = utcnow()
        scorer = Scorer(self.weights, date_spans(query, now), now.timestamp())
        scorer.score_pool(pool.values())
        links: list[tuple[int, int, int]] = []
        sources = scorer.sources(pool.values())
        if sources:
            w = self.weights
            links, found, more = await source.neighbours(
                repo, user_id, vector, sources, len(w.before), len(w.after)
            )
            rows |= more
            for c in found:
                if c.id not in pool:
                    pool[c.id] = c
                    scorer.score_late(c)
        return await self._hits(
            repo, user_id, scorer.spread(pool, links), rows, k, excluded, thread_id
        )

    async def _hits(
        self,
        repo: MemoryRepository,
        user_id: int,
        ranked: list[tuple[int, float]],
        rows: dict[int, MemoryRow],
        k: int,
        excluded: set[int],
        thread_id: str | None,
    ) -> list[MemoryHit]:
        """The best ``k`` that pass the filters, reading rows a chunk at a time."""
        hits: list[MemoryHit] = []
        chunk = max(2 * k, 20)
        for start in range(0, len(ranked), chunk):
            part = ranked[start : start + chunk]
            missing = [i for i, _ in part if i not in rows]
            rows |= {m.id: m for m in await repo.hit_rows(user_id, missing)}
            for memory_id, score in part:
                m = rows.get(memory_id)
                if m is None or (m.turn_id is not None and m.turn_id in excluded):
                    continue
                if thread_id is not None and m.thread_id != thread_id:
                    continue
                hits.append(
                    MemoryHit(m.id, m.kind, m.text, m.created_at, m.turn_id, m.thread_id, score)
                )
                if len(hits) >= k:
                    return hits
        return hits


def settle(job: asyncio.Future[Any] | None) -> None:
    """Cancel a job still running; mark a failed one's error as seen (raised above)."""
    if job is None:
        return
    if not job.done():
        job.cancel()
    elif not job.cancelled():
        job.exception()
