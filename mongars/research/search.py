"""Hybrid search over document chunks: dense (MiniLM cosine) + full text (BM25 / ts_rank),
fused by score, within the collections a user may read.

fused = cosine + text_weight * (text relevance / best text relevance of the search):
both lists' candidates get both scores (a text-only match's cosine is looked up), so a
passage found by one side only is not ranked on half of its evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.engine import unit_of_work
from mongars.db.fulltext import query_terms
from mongars.memory.embeddings import Embedder
from mongars.memory.recall import settle
from mongars.research.index import ChunkIndex
from mongars.research.models import Collection
from mongars.research.repository import ChunkRow, DocumentRepository

CANDIDATES = 50  # per ranked list


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    row: ChunkRow
    score: float
    dense: float
    lexical: float


class DocumentSearch:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        text_weight: float = 1.0,
        query_vector: Callable[[str], Awaitable[np.ndarray]] | None = None,
    ) -> None:
        """``query_vector``: the query's embedding; memory's cached one when memory runs,
        so a turn's message is embedded once for both."""
        self.sessions = sessions
        self.embedder = embedder
        self.text_weight = text_weight
        self.query_vector = query_vector or self._embed
        self.index = ChunkIndex()

    async def _embed(self, query: str) -> np.ndarray:
        return (await self.embedder.embed([query]))[0]

    async def search(
        self,
        user_id: int,
        query: str,
        k: int,
        collections: Sequence[str] | None = None,
        mode: str = "hybrid",
    ) -> list[ScoredChunk]:
        """The ``k`` best chunks of the user's own and the shared collections (or only
        those named). ``mode``: hybrid, text (BM25 only) or dense (embeddings only)."""
        if not query.strip():
            return []
        embedding = asyncio.ensure_future(self.query_vector(query))
        try:
            async with unit_of_work(self.sessions) as session:
                repo = DocumentRepository(session)
                visible = await repo.visible_collections(user_id, collections)
                if not visible:
                    return []
                return await self._rank(repo, visible, query, embedding, k, mode)
        finally:
            settle(embedding)

    async def _rank(
        self,
        repo: DocumentRepository,
        visible: list[Collection],
        query: str,
        embedding: asyncio.Future[np.ndarray],
        k: int,
        mode: str,
    ) -> list[ScoredChunk]:
        ids = [c.id for c in visible]
        text: list[tuple[int, float]] = []
        if mode != "dense":
            text = await repo.text_scored(ids, query_terms(query), CANDIDATES)
        vector = await embedding
        dense: list[tuple[int, float]] = []
        if mode != "text":
            dense = await self._dense(repo, visible, vector)
        cosines = dict(dense)
        missing = [i for i, _ in text if i not in cosines]
        if missing:
            cosines |= await self._cosines(repo, visible, vector, missing)
        best_text = max((s for _, s in text), default=0.0)
        lexical = {i: (s / best_text if best_text > 0 else 0.0) for i, s in text}
        if mode == "text":
            fused = {i: lexical[i] for i, _ in text}
        elif mode == "dense":
            fused = dict(dense)
        else:
            fused = {
                i: cosines.get(i, 0.0) + self.text_weight * lexical.get(i, 0.0)
                for i in dict.fromkeys([*cosines, *lexical])
            }
        top = sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        rows = {r.id: r for r in await repo.chunk_rows(ids, [i for i, _ in top])}
        return [
            ScoredChunk(
                rows[i], round(s, 4), round(cosines.get(i, 0.0), 4), round(lexical.get(i, 0.0), 4)
            )
            for i, s in top
            if i in rows
        ]

    async def _dense(
        self, repo: DocumentRepository, visible: list[Collection], vector: np.ndarray
    ) -> list[tuple[int, float]]:
        if repo.dialect == "postgresql":
            return await repo.dense_scored([c.id for c in visible], vector, CANDIDATES)
        return await self.index.search(repo, visible, vector, CANDIDATES)

    async def _cosines(
        self,
        repo: DocumentRepository,
        visible: list[Collection],
        vector: np.ndarray,
        ids: list[int],
    ) -> dict[int, float]:
        if repo.dialect == "postgresql":
            return await repo.cosines([c.id for c in visible], ids, vector)
        return self.index.cosines(visible, vector, ids)
