"""In-process exact vector index for SQLite (PostgreSQL uses pgvector HNSW).

One matrix per user (half precision where PyTorch is installed: matrix.py),
kept in an LRU of users, with what ranking needs besides the vector: each
memory's time, validity and thread (turns only), so a search on SQLite scores
its candidates and finds the turns next to its best hits without reading rows.

Before a search the user's change counters are read (one indexed row): new
embeddings are appended, an edit or deletion reloads, and an append that leaves
the index short of the user's embedded rows (a memory embedded after a newer
one, e.g. an edit re-embedded) reloads too. 100,000 memories x 384 dims is a
~77 MB matrix (154 MB in float32) searched in a few milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import OrderedDict

import numpy as np

from mongars.memory.matrix import products, storage_dtype, top_k
from mongars.memory.models import EMBEDDING_DIM
from mongars.memory.repository import MemoryRepository, VectorRows

NEIGHBOUR_WINDOW = 512  # how far (in the user's memories) to look for a thread's next turn
PART_MIN_ROWS = 20_000  # an index at least twice this size is searched in parts
MAX_PARTS = 4


class _UserIndex:
    def __init__(self, epoch: int, reset_epoch: int) -> None:
        self.epoch = epoch
        self.reset_epoch = reset_epoch
        self.size = 0
        self._ids = np.empty(0, np.int64)
        self._valid = np.empty(0, bool)
        self._times = np.empty(0, np.float64)
        self._threads = np.empty(0, np.int32)  # codes into thread_names; -1: none
        self._matrix = np.empty((0, EMBEDDING_DIM), dtype=storage_dtype())
        self.thread_codes: dict[str, int] = {}
        self.thread_names: list[str] = []

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.size]

    @property
    def max_id(self) -> int:
        return int(self._ids[self.size - 1]) if self.size else 0

    def _code(self, thread: str | None) -> int:
        if thread is None:
            return -1
        if thread not in self.thread_codes:
            self.thread_codes[thread] = len(self.thread_names)
            self.thread_names.append(thread)
        return self.thread_codes[thread]

    def append(self, rows: VectorRows) -> None:
        need = self.size + rows.ids.size
        if need > self._ids.size:  # grow by doubling, so appends stay cheap
            capacity = max(need, 2 * self._ids.size, 256)
            for name in ("_ids", "_valid", "_times", "_threads"):
                setattr(self, name, np.resize(getattr(self, name), capacity))
            grown = np.empty((capacity, EMBEDDING_DIM), dtype=self._matrix.dtype)
            grown[: self.size] = self._matrix[: self.size]
            self._matrix = grown
        part = slice(self.size, need)
        self._ids[part] = rows.ids
        self._valid[part] = rows.valid
        self._times[part] = rows.times
        self._threads[part] = [self._code(t) for t in rows.threads]
        self._matrix[part] = rows.matrix
        self.size = need

    def positions(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids found, their positions) among the valid memories of the index."""
        wanted = np.asarray(ids, dtype=np.int64)
        if not self.size or not wanted.size:
            return wanted[:0], wanted[:0]
        pos = np.clip(np.searchsorted(self.ids, wanted), 0, self.size - 1)
        hit = (self._ids[pos] == wanted) & self._valid[pos]
        return wanted[hit], pos[hit]


def _nearest(
    matrix: np.ndarray, valid: np.ndarray, ids: np.ndarray, vector: np.ndarray, k: int
) -> list[tuple[int, float]]:
    scores = products(matrix, vector)
    scores[~valid] = -np.inf
    k = min(k, int(valid.sum()))
    if k <= 0:
        return []
    values, positions = top_k(scores, k)  # sorted, best first
    return [(int(ids[i]), float(v)) for v, i in zip(values, positions, strict=True)]


class DenseIndex:
    def __init__(self, max_users: int = 64) -> None:
        self._users: OrderedDict[int, _UserIndex] = OrderedDict()
        self._max_users = max_users

    def size(self, user_id: int) -> int | None:
        """How many memories the user's index held at its last search (None: not
        loaded)."""
        index = self._users.get(user_id)
        return None if index is None else index.size

    def forget(self, user_id: int) -> None:
        self._users.pop(user_id, None)

    async def _fresh(
        self, repo: MemoryRepository, user_id: int, epochs: tuple[int, int] | None
    ) -> _UserIndex:
        epoch, reset_epoch = epochs or await repo.epochs(user_id)
        index = self._users.get(user_id)
        if index is not None and index.epoch == epoch:
            self._users.move_to_end(user_id)
            return index
        if index is not None and index.reset_epoch == reset_epoch:  # additions only
            index.append(await repo.vectors(user_id, after_id=index.max_id))
            index.epoch = epoch
            if index.size != await repo.embedded_count(user_id):
                index = None  # something older was embedded late: reload
        if index is None or index.reset_epoch != reset_epoch:
            index = _UserIndex(epoch, reset_epoch)
            index.append(await repo.vectors(user_id))
        self._users[user_id] = index
        self._users.move_to_end(user_id)
        while len(self._users) > self._max_users:
            self._users.popitem(last=False)
        return index

    async def refresh(
        self, repo: MemoryRepository, user_id: int, epochs: tuple[int, int] | None = None
    ) -> None:
        """Bring the user's index up to date (reads rows only if memories changed)."""
        await self._fresh(repo, user_id, epochs)

    async def search(
        self,
        repo: MemoryRepository,
        user_id: int,
        vector: np.ndarray,
        k: int,
        epochs: tuple[int, int] | None = None,
    ) -> list[tuple[int, float]]:
        """(memory id, cosine similarity), best first."""
        await self._fresh(repo, user_id, epochs)
        return await self.nearest(user_id, vector, k)

    async def nearest(self, user_id: int, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """``search`` on the index as it is (after ``refresh``), computed in a worker
        thread: the event loop meanwhile runs the search's full-text query (the
        product and the selection release the GIL)."""
        index = self._users.get(user_id)
        if index is None or not index.size:
            return []
        n = index.size  # a snapshot: appends write past it or into a new matrix
        # a large index is split across the cores (each part's product and selection
        # in its own thread: about half the time on two cores), then merged
        parts = max(1, min(MAX_PARTS, os.cpu_count() or 1, n // PART_MIN_ROWS))
        bounds = [n * p // parts for p in range(parts + 1)]
        found = await asyncio.gather(
            *(
                asyncio.to_thread(
                    _nearest, index._matrix[a:b], index._valid[a:b], index._ids[a:b], vector, k
                )
                for a, b in itertools.pairwise(bounds)
            )
        )
        return sorted(itertools.chain.from_iterable(found), key=lambda hit: -hit[1])[:k]

    # The methods below read the index as the last search of the user left it.

    def cosines(self, user_id: int, vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of some of the user's memories (those in the index)."""
        index = self._users.get(user_id)
        if index is None:
            return {}
        found, pos = index.positions(ids)
        rows = index._matrix[pos].astype(np.float32)
        sims = rows @ np.asarray(vector, dtype=np.float32)
        return {int(i): float(s) for i, s in zip(found, sims, strict=True)}

    def describe(self, user_id: int, ids: list[int]) -> dict[int, tuple[float, str | None]]:
        """id -> (created_at as unix seconds, thread of a turn) for the valid ones."""
        index = self._users.get(user_id)
        if index is None:
            return {}
        found, pos = index.positions(ids)
        names = index.thread_names
        return {
            int(i): (
                float(index._times[p]),
                names[c] if (c := int(index._threads[p])) >= 0 else None,
            )
            for i, p in zip(found, pos, strict=True)
        }

    def neighbours(
        self, user_id: int, sources: list[int], before: int, after: int
    ) -> list[tuple[int, int, int]]:
        """(source, neighbour, offset) for the turns of each source's thread up to
        ``before`` earlier and ``after`` later (-1: the turn just before)."""
        index = self._users.get(user_id)
        if index is None:
            return []
        links: list[tuple[int, int, int]] = []
        found, positions = index.positions(sources)
        for source, p in zip(found.tolist(), positions.tolist(), strict=True):
            code = index._threads[p]
            if code < 0:
                continue
            for step, count in ((1, after), (-1, before)):
                if count <= 0:
                    continue
                lo, hi = (
                    (p + 1, min(index.size, p + 1 + NEIGHBOUR_WINDOW))
                    if step > 0
                    else (
                        max(0, p - NEIGHBOUR_WINDOW),
                        p,
                    )
                )
                same = np.flatnonzero((index._threads[lo:hi] == code) & index._valid[lo:hi]) + lo
                picked = same[:count] if step > 0 else same[::-1][:count]
                links += [(source, int(index._ids[q]), step * n) for n, q in enumerate(picked, 1)]
        return links
