"""In-process exact vector index of document chunks, for SQLite (PostgreSQL: pgvector).

One matrix per collection (half precision where PyTorch is installed:
memory/matrix.py), reloaded when the collection's ``version`` moves (every
ingest or delete bumps it), kept in an LRU. A search over several collections
scores each one's matrix and merges the best.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from mongars.memory.matrix import products, storage_dtype
from mongars.research.models import Collection
from mongars.research.repository import DocumentRepository


class _CollectionIndex:
    def __init__(self, version: int, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.version = version
        self.ids = ids
        self.matrix = np.ascontiguousarray(matrix, dtype=storage_dtype())

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return products(self.matrix, vector)


class ChunkIndex:
    def __init__(self, max_collections: int = 32) -> None:
        self._indexes: OrderedDict[int, _CollectionIndex] = OrderedDict()
        self._max = max_collections

    def forget(self, collection_id: int) -> None:
        self._indexes.pop(collection_id, None)

    async def _fresh(self, repo: DocumentRepository, collection: Collection) -> _CollectionIndex:
        index = self._indexes.get(collection.id)
        if index is None or index.version != collection.version:
            rows = await repo.vectors(collection.id)
            index = _CollectionIndex(collection.version, rows.ids, rows.matrix)
        self._indexes[collection.id] = index
        self._indexes.move_to_end(collection.id)
        while len(self._indexes) > self._max:
            self._indexes.popitem(last=False)
        return index

    async def search(
        self,
        repo: DocumentRepository,
        collections: Sequence[Collection],
        vector: np.ndarray,
        k: int,
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine), best first, over the given collections."""
        best: list[tuple[int, float]] = []
        for collection in collections:
            index = await self._fresh(repo, collection)
            if not index.ids.size:
                continue
            scores = index.scores(vector)
            top = min(k, scores.size)
            picked = np.argpartition(-scores, top - 1)[:top]
            best += [(int(index.ids[i]), float(scores[i])) for i in picked]
        best.sort(key=lambda pair: -pair[1])
        return best[:k]

    def cosines(
        self, collections: Sequence[Collection], vector: np.ndarray, ids: Sequence[int]
    ) -> dict[int, float]:
        """Cosine of some chunks (those in the indexes as the last search left them)."""
        wanted = np.asarray(list(ids), dtype=np.int64)
        out: dict[int, float] = {}
        if not wanted.size:
            return out
        query = np.asarray(vector, dtype=np.float32)
        for collection in collections:
            index = self._indexes.get(collection.id)
            if index is None or not index.ids.size:
                continue
            pos = np.clip(np.searchsorted(index.ids, wanted), 0, index.ids.size - 1)
            hit = index.ids[pos] == wanted
            if hit.any():
                rows = index.matrix[pos[hit]].astype(np.float32)
                out |= {int(i): float(s) for i, s in zip(wanted[hit], rows @ query, strict=True)}
        return out
