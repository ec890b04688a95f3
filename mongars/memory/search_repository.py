"""Search reads: full text, nearest vectors, the in-process index's rows, hit rows
and neighbour turns, on SQLite (FTS5 + blobs) and PostgreSQL (tsvector + pgvector)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Float, Integer, bindparam, column, func, select, text

from mongars.db.fulltext import fts_quote, pg_tsquery, query_terms
from mongars.memory.base_repository import RepositoryBase
from mongars.memory.models import EMBEDDING_DIM, Embedding, Memory


class VectorRows(NamedTuple):
    """Embedded memories for the in-process index: ``valid`` is False for facts that
    no longer hold; ``threads`` holds the thread of turns (None for other kinds)."""

    ids: np.ndarray
    valid: np.ndarray
    times: np.ndarray  # created_at, unix seconds
    threads: list[str | None]
    matrix: np.ndarray


class MemoryRow(NamedTuple):
    """What a search hit needs of a memory (no embedding, no JSON columns)."""

    id: int
    kind: str
    text: str
    created_at: datetime
    turn_id: int | None
    thread_id: str | None


_ROW_COLUMNS = (
    Memory.id,
    Memory.kind,
    Memory.text,
    Memory.created_at,
    Memory.turn_id,
    Memory.thread_id,
)


BM25_K1, BM25_B = 1.2, 0.75  # FTS5's
HNSW_EF_SEARCH = 100  # pgvector: candidates kept while walking the graph


class TermWeights(NamedTuple):
    """PostgreSQL BM25: each term's inverse document frequency, the mean length."""

    idf: dict[str, float]
    avgdl: float

    @classmethod
    def bm25(cls, docs: dict[str, float], total: float, avgdl: float) -> TermWeights:
        """FTS5's idf: log((N - n + 0.5) / (n + 0.5)), at least a tiny positive."""
        idf = {
            t: max(1e-6, math.log((max(0.0, total - n) + 0.5) / (n + 0.5))) for t, n in docs.items()
        }
        return cls(idf, avgdl)


class SearchRepository(RepositoryBase):
    """Search reads (see the module docstring)."""

    async def vectors(self, user_id: int, after_id: int = 0) -> VectorRows:
        """A user's embedded memories with id > after_id, in id order."""
        rows = (
            await self.session.execute(
                select(
                    Memory.id,
                    Memory.invalid_at.is_(None),
                    Memory.created_at,
                    Memory.kind,
                    Memory.thread_id,
                    Memory.embedding,
                )
                .where(
                    Memory.user_id == user_id,
                    Memory.embedded.is_(True),
                    Memory.id > after_id,
                )
                .order_by(Memory.id)
            )
        ).all()
        n = len(rows)
        return VectorRows(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            valid=np.fromiter((bool(r[1]) for r in rows), dtype=bool, count=n),
            times=np.fromiter((r[2].timestamp() for r in rows), dtype=np.float64, count=n),
            threads=[r[4] if r[3] == "turn" else None for r in rows],
            matrix=(
                np.vstack([r[5] for r in rows]).astype(np.float32, copy=False)
                if rows
                else np.empty((0, EMBEDDING_DIM), np.float32)
            ),
        )

    async def embedded_count(self, user_id: int) -> int:
        """How many of the user's memories have an embedding (an index-only count)."""
        value = await self.session.scalar(
            select(func.count())
            .select_from(Memory)
            .where(Memory.user_id == user_id, Memory.embedded.is_(True))
        )
        return int(value or 0)

    async def dense_search(self, user_id: int, vector: np.ndarray, k: int) -> list[int]:
        """PostgreSQL only: nearest memories by cosine distance (pgvector HNSW)."""
        return [i for i, _ in await self.dense_scored(user_id, vector, k)]

    async def prepare_dense(self) -> None:
        """PostgreSQL: the HNSW scan settings for this transaction (one round trip,
        which a search sends while its query is still being embedded)."""
        await self.session.execute(
            text(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', :ef, true)"
            ),
            {"ef": str(HNSW_EF_SEARCH)},
        )
        self._dense_ready = True

    async def dense_scored(
        self, user_id: int, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """PostgreSQL only: (id, cosine similarity) of the nearest memories, best first
        (with the settings of ``prepare_dense``, called first in the transaction)."""
        if not self._dense_ready:
            await self.prepare_dense()
        distance = Memory.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        rows = await self.session.execute(
            select(Memory.id, distance.label("distance"))
            .where(
                Memory.user_id == user_id, Memory.embedded.is_(True), Memory.invalid_at.is_(None)
            )
            .order_by(distance)
            .limit(k)
        )
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    async def cosines(
        self, user_id: int, ids: Sequence[int], vector: np.ndarray
    ) -> dict[int, float]:
        """PostgreSQL only: cosine similarity of these memories to ``vector``."""
        if not ids:
            return {}
        distance = Memory.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        # by primary key only, owner checked here (see hit_rows)
        rows = await self.session.execute(
            select(Memory.id, Memory.user_id, distance).where(
                Memory.id.in_(ids), Memory.embedded.is_(True)
            )
        )
        return {int(r[0]): 1.0 - float(r[2]) for r in rows if r[1] == user_id}

    async def text_search(self, user_id: int, query: str, k: int) -> list[int]:
        """Full-text ranked ids (BM25: FTS5's on SQLite, in SQL on PostgreSQL)."""
        return [i for i, _ in await self.text_scored(user_id, query, k)]

    async def text_scored(
        self,
        user_id: int,
        query: str,
        k: int,
        terms: Sequence[str] | None = None,
        require_all: bool = False,
        weights: TermWeights | None = None,
    ) -> list[tuple[int, float]]:
        """(id, BM25 relevance) best first, higher is better. ``terms``: the words to
        match (default: the query's words, stopwords out), any of them or with
        ``require_all`` all of them. ``weights`` (PostgreSQL): the terms' BM25
        weights, counted here when not given."""
        terms = query_terms(query) if terms is None else list(terms)
        if not terms:
            return []
        if self.dialect == "postgresql":
            if weights is None:
                total, length = await self.collection_size()
                weights = TermWeights.bm25(await self.term_counts(terms, total), total, length)
            return await self._pg_bm25(user_id, terms, require_all, weights, k)
        # Rank inside FTS5 first, then drop facts no longer valid (rare): joining every
        # match to its row before ranking costs more than the ranking itself.
        join = " AND " if require_all else " OR "
        match = f"owner:u{user_id} AND ({join.join(fts_quote(t) for t in terms)})"
        rows = await self.session.execute(
            text(
                "SELECT f.id, f.r FROM (SELECT rowid AS id, -bm25(memories_fts, 1.0, 0.0) AS r "
                "FROM memories_fts WHERE memories_fts MATCH :match "
                "ORDER BY bm25(memories_fts, 1.0, 0.0) LIMIT :k) f "
                "JOIN memories m ON m.id = f.id WHERE m.invalid_at IS NULL ORDER BY f.r DESC"
            ),
            {"match": match, "k": k},
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def _pg_bm25(
        self, user_id: int, terms: list[str], require_all: bool, weights: TermWeights, k: int
    ) -> list[tuple[int, float]]:
        """BM25 over the GIN index's matches: each matched term counts once (chat turns
        are short: a word seldom repeats), weighted by its rarity, and the sum is
        normalised by the memory's length (distinct words) against the mean."""
        params: dict[str, Any] = {
            "uid": user_id,
            "k": k,
            "q": pg_tsquery(terms, " & " if require_all else " | "),
            "avgdl": max(weights.avgdl, 1.0),
        }
        parts = []
        for n, term in enumerate(terms):
            params[f"q{n}"], params[f"w{n}"] = pg_tsquery([term]), weights.idf.get(term, 1.0)
            parts.append(  # only numbered parameter names are interpolated
                f"CASE WHEN search_vector @@ to_tsquery('english', :q{n}) "
                f"THEN CAST(:w{n} AS float8) ELSE 0 END"
            )
        k1, b = BM25_K1, BM25_B
        rows = await self.session.execute(
            text(
                f"SELECT id, ({' + '.join(parts)}) * {k1 + 1} / "  # noqa: S608
                f"({k1 * (1 - b)} + 1 + {k1 * b} * length(search_vector) "
                "/ CAST(:avgdl AS float8)) AS r "
                "FROM memories WHERE user_id = :uid AND invalid_at IS NULL "
                "AND search_vector @@ to_tsquery('english', :q) "
                "ORDER BY r DESC, id DESC LIMIT :k"
            ),
            params,
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def collection_size(self) -> tuple[int, float]:
        """(about how many memories there are, PostgreSQL: their mean length in
        distinct words, from the newest; 0 on SQLite) - cheap."""
        total = int(await self.session.scalar(select(func.max(Memory.id))) or 0)
        if self.dialect != "postgresql":
            return total, 0.0
        length = await self.session.scalar(
            text(
                "SELECT avg(length(search_vector)) FROM (SELECT search_vector FROM memories "
                "ORDER BY id DESC LIMIT 2000) s"
            )
        )
        return total, float(length or 0.0)

    async def term_counts(
        self, terms: Sequence[str], cap: int, after_id: int = 0
    ) -> dict[str, float]:
        """About how many memories (all users) contain each term, counting at most
        ``cap``. SQLite counts FTS5 matches among memories with id > ``after_id`` (a
        recent sample, cheap to count); PostgreSQL reads the lexeme frequencies
        ANALYZE keeps for the tsvector column and counts (up to ``cap``) the terms
        missing from them, which are rare: a few index pages each."""
        if self.dialect == "postgresql":
            return await self._pg_term_counts(terms, cap)
        counts: dict[str, float] = {}
        for term in terms:
            sql = (
                "SELECT count(*) FROM (SELECT rowid FROM memories_fts "
                "WHERE memories_fts MATCH :q AND rowid > :after LIMIT :cap)"
            )
            params = {"q": f"text:{fts_quote(term)}", "cap": cap, "after": after_id}
            counts[term] = float(await self.session.scalar(text(sql), params) or 0)
        return counts

    async def _pg_term_counts(self, terms: Sequence[str], cap: int) -> dict[str, float]:
        rows = await self.session.execute(
            text(
                "SELECT q.term, CASE WHEN est.n > 0 THEN est.n ELSE ("
                "SELECT count(*) FROM (SELECT 1 FROM memories "
                "WHERE search_vector @@ to_tsquery('english', q.tsq) LIMIT :cap) m) END "
                "FROM unnest(CAST(:terms AS text[]), CAST(:tsqs AS text[])) AS q(term, tsq) "
                "CROSS JOIN LATERAL ("
                "SELECT coalesce(max(e.freq), 0) * max(c.reltuples) AS n FROM pg_class c "
                "LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
                "AND s.tablename = 'memories' AND s.attname = 'search_vector' "
                "LEFT JOIN LATERAL unnest(CAST(CAST(s.most_common_elems AS text) AS text[]), "
                "s.most_common_elem_freqs) AS e(lexeme, freq) "
                "ON e.lexeme = ANY(tsvector_to_array(to_tsvector('english', q.term))) "
                "WHERE c.oid = CAST('memories' AS regclass)) est"
            ),
            {"terms": list(terms), "tsqs": [pg_tsquery([t]) for t in terms], "cap": cap},
        )
        return {str(r[0]): max(0.0, float(r[1] or 0)) for r in rows}

    async def hit_rows(self, user_id: int, ids: Sequence[int]) -> list[MemoryRow]:
        """The user's valid memories among ``ids`` (the columns a search hit needs)."""
        if not ids:
            return []
        # By primary key only, owner checked here: given the owner too, SQLite's planner
        # walks the owner's index instead (all of a large user's rows).
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at).where(Memory.id.in_(ids))
        )
        return [MemoryRow(*r[:-2]) for r in rows if r.user_id == user_id and r.invalid_at is None]

    async def scored_rows(
        self, user_id: int, ids: Sequence[int], vector: np.ndarray
    ) -> list[tuple[MemoryRow, float]]:
        """PostgreSQL only: ``hit_rows`` with each memory's cosine similarity to
        ``vector`` (0 when not embedded yet), in one round trip."""
        if not ids:
            return []
        distance = Memory.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at, distance).where(
                Memory.id.in_(ids)
            )
        )
        return [
            (MemoryRow(*r[:-3]), 1.0 - float(r[-1]) if r[-1] is not None else 0.0)
            for r in rows
            if r.user_id == user_id and r.invalid_at is None
        ]

    async def neighbours(
        self,
        user_id: int,
        sources: Sequence[tuple[int, str]],
        before: int,
        after: int,
        vector: np.ndarray | None = None,
    ) -> tuple[list[tuple[int, int, int]], list[MemoryRow], dict[int, float]]:
        """Turns up to ``before`` earlier and ``after`` later than each source in its
        thread: links (source id, neighbour id, offset; -1 is the turn just before),
        the neighbours' rows and (PostgreSQL, given ``vector``) their cosines."""
        if not sources or (before <= 0 and after <= 0):
            return [], [], {}
        columns = ", ".join(c.name for c in _ROW_COLUMNS)
        if vector is not None:
            columns += ", embedding <=> :q AS distance"
        parts: list[str] = []
        params: dict[str, Any] = {"uid": user_id, "before": before, "after": after}
        if vector is not None:
            params["q"] = vector
        for n, (source, thread) in enumerate(sources):
            params[f"s{n}"], params[f"t{n}"] = source, thread
            for op, order, limit in ((">", "ASC", "after"), ("<", "DESC", "before")):
                parts.append(  # only fixed keywords and column names are interpolated
                    f"SELECT * FROM (SELECT CAST(:s{n} AS INTEGER) AS src, {columns} "  # noqa: S608
                    f"FROM memories WHERE user_id = :uid AND thread_id = :t{n} "
                    f"AND kind = 'turn' AND invalid_at IS NULL AND id {op} :s{n} "
                    f"ORDER BY id {order} LIMIT :{limit}) AS q{n}{limit[0]}"
                )
        typed = [column("src", Integer), *(column(c.name, c.type) for c in _ROW_COLUMNS)]
        if vector is not None:
            typed.append(column("distance", Float()))
        sql = text(" UNION ALL ".join(parts))
        if vector is not None:
            sql = sql.bindparams(bindparam("q", type_=Embedding()))
        result = await self.session.execute(sql.columns(*typed), params)
        found: dict[int, list[int]] = {}
        rows: dict[int, MemoryRow] = {}
        cosines: dict[int, float] = {}
        width = len(_ROW_COLUMNS)
        for r in result:
            found.setdefault(int(r[0]), []).append(int(r[1]))
            rows[int(r[1])] = MemoryRow(*r[1 : 1 + width])
            if vector is not None and r[-1] is not None:
                cosines[int(r[1])] = 1.0 - float(r[-1])
        links: list[tuple[int, int, int]] = []
        for source, ids in found.items():
            later = sorted(i for i in ids if i > source)
            earlier = sorted((i for i in ids if i < source), reverse=True)
            links += [(source, i, n) for n, i in enumerate(later, start=1)]
            links += [(source, i, -n) for n, i in enumerate(earlier, start=1)]
        return links, list(rows.values()), cosines
