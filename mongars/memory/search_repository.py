"""Search reads: full text, nearest vectors, the in-process index's rows, hit rows
and neighbour turns, on SQLite (FTS5 + blobs) and PostgreSQL (tsvector + pgvector)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Float, Integer, any_, bindparam, column, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from mongars.db.fulltext import fts_quote, owned_words, pg_tsquery, query_terms
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


# PostgreSQL: a tsquery's words as the user's own (migration 0009); {} is a query text
_PG_OWNED = "mongars_owned_tsquery(CAST(:uid AS integer), to_tsquery('english', {}))"


def _owned(user_id: int, term: str) -> str:
    """An FTS5 string of ``term`` as the user's own word (see owned_words)."""
    return fts_quote(owned_words(user_id, term))


def _pg_neighbours(columns: str) -> str:
    """PostgreSQL: the turns around each source in one statement whatever the number
    of sources (a fixed text, so asyncpg reuses its prepared plan)."""
    side = (
        "(SELECT {columns} FROM memories WHERE user_id = :uid AND thread_id = s.thread "
        "AND kind = 'turn' AND invalid_at IS NULL AND id {op} s.src "
        "ORDER BY id {order} LIMIT :{limit})"
    )
    later = side.format(columns=columns, op=">", order="ASC", limit="after")
    earlier = side.format(columns=columns, op="<", order="DESC", limit="before")
    return (
        "SELECT s.src, m.* FROM unnest(CAST(:srcs AS integer[]), "  # noqa: S608 (constants)
        "CAST(:threads AS text[])) AS s(src, thread) "
        f"CROSS JOIN LATERAL ({later} UNION ALL {earlier}) AS m"
    )


class SearchRepository(RepositoryBase):
    """Search reads (see the module docstring)."""

    def _among(self, ids: Sequence[int]) -> ColumnElement[bool]:
        """``Memory.id`` is one of ``ids``: on PostgreSQL as ``= ANY(array)``, one
        statement whatever the count (asyncpg then reuses its prepared plan)."""
        if self.dialect == "postgresql":
            return Memory.id == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
        return Memory.id.in_(ids)

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
                self._among(ids), Memory.embedded.is_(True)
            )
        )
        return {int(r[0]): 1.0 - float(r[2]) for r in rows if r[1] == user_id}

    async def text_search(self, user_id: int, query: str, k: int) -> list[int]:
        """Full-text ranked ids (BM25: FTS5's over the user's words on SQLite, in SQL
        on PostgreSQL)."""
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
                counts = await self.term_counts(user_id, terms, total)
                weights = TermWeights.bm25(counts, total, length)
            return await self._pg_bm25(user_id, terms, require_all, weights, k)
        # The index holds each user's words as terms of their own (migration 0009).
        # Rank inside FTS5 first, then drop facts no longer valid (rare): joining every
        # match to its row before ranking costs more than the ranking itself.
        join = " AND " if require_all else " OR "
        match = join.join(_owned(user_id, t) for t in terms)
        rows = await self.session.execute(
            text(
                "SELECT f.id, f.r FROM (SELECT rowid AS id, -bm25(memories_fts) AS r "
                "FROM memories_fts WHERE memories_fts MATCH :match "
                "ORDER BY bm25(memories_fts) LIMIT :k) f JOIN memories m ON m.id = f.id "
                "WHERE m.user_id = :uid AND m.invalid_at IS NULL ORDER BY f.r DESC"
            ),
            {"match": match, "k": k, "uid": user_id},
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def user_term_counts(
        self, user_id: int, terms: Sequence[str], cap: int
    ) -> dict[str, int]:
        """SQLite: in how many of the user's memories each term is, counting at most
        ``cap`` (each reads the start of one of the user's posting lists)."""
        counts = ", ".join(
            f"(SELECT count(*) FROM (SELECT rowid FROM memories_fts "  # noqa: S608
            f"WHERE memories_fts MATCH :q{n} LIMIT :cap))"  # only numbered names
            for n in range(len(terms))
        )
        params: dict[str, Any] = {f"q{n}": _owned(user_id, t) for n, t in enumerate(terms)}
        row = (await self.session.execute(text(f"SELECT {counts}"), {**params, "cap": cap})).one()
        return {t: int(n) for t, n in zip(terms, row, strict=True)}

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
                f"CASE WHEN search_words @@ {_PG_OWNED.format(f':q{n}')} "
                f"THEN CAST(:w{n} AS float8) ELSE 0 END"
            )
        k1, b = BM25_K1, BM25_B
        rows = await self.session.execute(
            text(
                f"SELECT id, ({' + '.join(parts)}) * {k1 + 1} / "  # noqa: S608
                f"({k1 * (1 - b)} + 1 + {k1 * b} * length(search_words) "
                "/ CAST(:avgdl AS float8)) AS r "
                # the words are the user's own: no user_id test, which would have
                # the planner intersect the user's whole index entry with the matches
                f"FROM memories WHERE search_words @@ {_PG_OWNED.format(':q')} "
                "AND invalid_at IS NULL "
                "ORDER BY r DESC, id DESC LIMIT :k"
            ),
            params,
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def user_size(self, user_id: int) -> int:
        """How many memories the user has (an index-only count)."""
        value = await self.session.scalar(
            select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
        )
        return int(value or 0)

    async def collection_size(self) -> tuple[int, float]:
        """(about how many memories there are, PostgreSQL: their mean length in
        distinct words, from the newest; 0 on SQLite) - cheap (BM25's N and mean)."""
        total = int(await self.session.scalar(select(func.max(Memory.id))) or 0)
        if self.dialect != "postgresql":
            return total, 0.0
        length = await self.session.scalar(
            text(
                "SELECT avg(length(search_words)) FROM (SELECT search_words FROM memories "
                "ORDER BY id DESC LIMIT 2000) s"
            )
        )
        return total, float(length or 0.0)

    async def term_counts(self, user_id: int, terms: Sequence[str], cap: int) -> dict[str, float]:
        """PostgreSQL: about how many of the user's memories contain each term (the
        words are the user's own, migration 0009), from the lexeme frequencies ANALYZE
        keeps for the tsvector column, counting (up to ``cap``) the terms missing from
        them, which are rare: a few index pages each."""
        rows = await self.session.execute(
            text(
                "WITH mce AS (SELECT e.lexeme, e.freq * c.reltuples AS n FROM pg_stats s "
                "JOIN pg_class c ON c.oid = CAST('memories' AS regclass) "
                "CROSS JOIN LATERAL unnest(CAST(CAST(s.most_common_elems AS text) AS text[]), "
                "s.most_common_elem_freqs) AS e(lexeme, freq) "
                "WHERE s.schemaname = current_schema() AND s.tablename = 'memories' "
                "AND s.attname = 'search_words'), "
                "q AS MATERIALIZED (SELECT term, tsvector_to_array("  # tag each word once
                "mongars_owned_tsvector(CAST(:uid AS integer), term)) AS lexemes "
                "FROM unnest(CAST(:terms AS text[])) AS term) "
                "SELECT q.term, coalesce(max(mce.n), 0) FROM q "
                "LEFT JOIN mce ON mce.lexeme = ANY(q.lexemes) GROUP BY q.term"
            ),
            {"uid": user_id, "terms": list(terms)},
        )
        found = {str(r[0]): max(0.0, float(r[1] or 0)) for r in rows}
        missing = [t for t in terms if found.get(t, 0.0) <= 0]
        if missing:
            # one uncorrelated count per term, each planned for its own word (GIN)
            counts = ", ".join(
                "(SELECT count(*) FROM (SELECT 1 FROM memories WHERE search_words @@ "  # noqa: S608
                f"{_PG_OWNED.format(f':q{n}')} LIMIT :cap) m{n})"  # only numbered names
                for n in range(len(missing))
            )
            params: dict[str, Any] = {f"q{n}": pg_tsquery([t]) for n, t in enumerate(missing)}
            params |= {"uid": user_id, "cap": cap}
            row = (await self.session.execute(text(f"SELECT {counts}"), params)).one()
            found |= {t: float(n) for t, n in zip(missing, row, strict=True)}
        return found

    async def hit_rows(self, user_id: int, ids: Sequence[int]) -> list[MemoryRow]:
        """The user's valid memories among ``ids`` (the columns a search hit needs)."""
        if not ids:
            return []
        # By primary key only, owner checked here: given the owner too, SQLite's planner
        # walks the owner's index instead (all of a large user's rows).
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at).where(self._among(ids))
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
                self._among(ids)
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
        params: dict[str, Any] = {"uid": user_id, "before": before, "after": after}
        if vector is not None:
            params["q"] = vector
        if self.dialect == "postgresql":
            sql = text(_pg_neighbours(columns))
            params["srcs"] = [source for source, _ in sources]
            params["threads"] = [thread for _, thread in sources]
        else:
            parts: list[str] = []
            for n, (source, thread) in enumerate(sources):
                params[f"s{n}"], params[f"t{n}"] = source, thread
                for op, order, limit in ((">", "ASC", "after"), ("<", "DESC", "before")):
                    parts.append(  # only fixed keywords and column names are interpolated
                        f"SELECT * FROM (SELECT CAST(:s{n} AS INTEGER) AS src, "  # noqa: S608
                        f"{columns} FROM memories WHERE user_id = :uid AND thread_id = :t{n} "
                        f"AND kind = 'turn' AND invalid_at IS NULL AND id {op} :s{n} "
                        f"ORDER BY id {order} LIMIT :{limit}) AS q{n}{limit[0]}"
                    )
            sql = text(" UNION ALL ".join(parts))
        typed = [column("src", Integer), *(column(c.name, c.type) for c in _ROW_COLUMNS)]
        if vector is not None:
            typed.append(column("distance", Float()))
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
