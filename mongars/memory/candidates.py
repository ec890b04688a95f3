"""Where a search's candidates and their facts come from, per backend.

SQLite: the in-process index (index.py) holds every embedded memory's vector,
time, validity and thread, so candidates are scored and their neighbour turns
found without reading rows; only rows it does not hold (not embedded yet) are
read. PostgreSQL: pgvector's HNSW for the nearest, and SQL for rows and
neighbours (several API processes share the database, no process holds it all).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mongars.memory.index import DenseIndex
from mongars.memory.repository import MemoryRepository, MemoryRow
from mongars.memory.retrieval import Candidate

Links = list[tuple[int, int, int]]  # (source id, neighbour id, offset)


def candidate(m: MemoryRow, dense: float = 0.0) -> Candidate:
    # only turns have neighbours: notes, facts and summaries stand alone
    thread = m.thread_id if m.kind == "turn" else None
    return Candidate(m.id, thread, m.created_at.timestamp(), dense=dense)


class CandidateSource(Protocol):
    async def dense(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        k: int,
        epochs: tuple[int, int] | None,
    ) -> list[tuple[int, float]]: ...

    async def pool(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        ids: list[int],
        known: dict[int, float],
        read: dict[int, tuple[MemoryRow, float]],
    ) -> tuple[dict[int, Candidate], dict[int, MemoryRow]]:
        """The candidates among ``ids`` (the user's, still valid), each with its
        cosine (``known``: those already computed; ``read``: rows already read, with
        their cosines), and the rows read for them."""
        ...

    async def neighbours(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        sources: list[Candidate],
        before: int,
        after: int,
    ) -> tuple[Links, list[Candidate], dict[int, MemoryRow]]: ...


class IndexCandidates:
    """SQLite: the in-process index answers; rows are read only for what it lacks."""

    def __init__(self, index: DenseIndex) -> None:
        self.index = index

    async def dense(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        k: int,
        epochs: tuple[int, int] | None,
    ) -> list[tuple[int, float]]:
        return await self.index.search(repo, user_id, vector, k, epochs)

    async def pool(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        ids: list[int],
        known: dict[int, float],
        read: dict[int, tuple[MemoryRow, float]],
    ) -> tuple[dict[int, Candidate], dict[int, MemoryRow]]:
        held = self.index.describe(user_id, ids)
        pool = {i: Candidate(i, thread, at) for i, (at, thread) in held.items()}
        rows = {m.id: m for m in await repo.hit_rows(user_id, [i for i in ids if i not in held])}
        pool |= {i: candidate(m) for i, m in rows.items()}
        cosines = known | self.index.cosines(user_id, vector, [i for i in pool if i not in known])
        for i, c in pool.items():
            c.dense = cosines.get(i, 0.0)
        return pool, rows

    async def neighbours(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        sources: list[Candidate],
        before: int,
        after: int,
    ) -> tuple[Links, list[Candidate], dict[int, MemoryRow]]:
        links = self.index.neighbours(user_id, [c.id for c in sources], before, after)
        new = list(dict.fromkeys(n for _, n, _ in links))
        cosines = self.index.cosines(user_id, vector, new)
        found = [
            Candidate(i, thread, at, dense=cosines.get(i, 0.0))
            for i, (at, thread) in self.index.describe(user_id, new).items()
        ]
        return links, found, {}


class SqlCandidates:
    """PostgreSQL: pgvector and SQL."""

    async def dense(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        k: int,
        epochs: tuple[int, int] | None,
    ) -> list[tuple[int, float]]:
        return await repo.dense_scored(user_id, vector, k)

    async def pool(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        ids: list[int],
        known: dict[int, float],
        read: dict[int, tuple[MemoryRow, float]],
    ) -> tuple[dict[int, Candidate], dict[int, MemoryRow]]:
        # the searches read their candidates' rows; any other: rows and cosines at once
        missing = [i for i in ids if i not in read]
        scored = [read[i] for i in ids if i in read]
        scored += await repo.scored_rows(user_id, missing, vector) if missing else []
        pool = {m.id: candidate(m, dense=known.get(m.id, cos)) for m, cos in scored}
        return pool, {m.id: m for m, _ in scored}

    async def neighbours(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        sources: list[Candidate],
        before: int,
        after: int,
    ) -> tuple[Links, list[Candidate], dict[int, MemoryRow]]:
        pairs = [(c.id, c.thread_id) for c in sources if c.thread_id is not None]
        links, rows, cosines = await repo.neighbours(user_id, pairs, before, after, vector)
        found = [candidate(m, dense=cosines.get(m.id, 0.0)) for m in rows]
        return links, found, {m.id: m for m in rows}
