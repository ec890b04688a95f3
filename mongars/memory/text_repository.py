"""Full-text search reads of memories: BM25 over each user's own words (migration
0009), FTS5's on SQLite, computed in SQL over the GIN index's matches on
PostgreSQL, and the word counts that weigh and choose the words (terms.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, select, text

from mongars.db.fulltext import fts_quote, owned_words, pg_tsquery, query_terms
from mongars.memory.base_repository import RepositoryBase
from mongars.memory.models import Memory

BM25_K1, BM25_B = 1.2, 0.75  # FTS5's


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


def common_counts(
    user_id: int, stems: dict[str, list[str]], common: dict[str, float]
) -> tuple[dict[str, float], list[str]]:
    """PostgreSQL: about how many of the user's memories hold each term, for the
    terms whose lexemes (``stems``) are among the ``common`` ones (see
    ``common_lexemes``; a stopword: none), and the other terms, rarer, to count."""
    counts: dict[str, float] = {}
    rare: list[str] = []
    for term, lexemes in stems.items():
        n = max((common.get(f"{user_id}_{x}", 0.0) for x in lexemes), default=0.0)
        if n > 0 or not lexemes:
            counts[term] = n
        else:
            rare.append(term)
    return counts, rare


def _owned(user_id: int, term: str) -> str:
    """An FTS5 string of ``term`` as the user's own word (see owned_words)."""
    return fts_quote(owned_words(user_id, term))


class TextRepository(RepositoryBase):
    """Full-text reads (see the module docstring)."""

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
        weights: TermWeights | None = None,
        scored: Sequence[str] | None = None,
    ) -> list[tuple[int, float]]:
        """(id, BM25 relevance) best first, higher is better. ``terms``: the words to
        match, any of them (default: the query's words, stopwords out). ``weights``
        (PostgreSQL): the terms' BM25 weights, counted here when not given;
        ``scored`` (PostgreSQL): the words whose weights count for the memories
        matched (default: ``terms``)."""
        terms = query_terms(query) if terms is None else list(terms)
        if not terms:
            return []
        if self.dialect == "postgresql":
            if weights is None:
                total, length = await self.collection_size()
                stems = await self.stems(terms)
                counts, rare = common_counts(user_id, stems, await self.common_lexemes())
                counts |= await self.term_counts(user_id, rare, total)
                weights = TermWeights.bm25(counts, total, length)
            scored = terms if scored is None else list(scored)
            return await self._pg_bm25(user_id, terms, scored, weights, k)
        # The index holds each user's words as terms of their own (migration 0009).
        # Rank inside FTS5 first, then drop facts no longer valid (rare): joining every
        # match to its row before ranking costs more than the ranking itself.
        match = " OR ".join(_owned(user_id, t) for t in terms)
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
        self,
        user_id: int,
        terms: list[str],
        scored: list[str],
        weights: TermWeights,
        k: int,
    ) -> list[tuple[int, float]]:
        """BM25 over the GIN index's matches: each matched term counts once (chat turns
        are short: a word seldom repeats), weighted by its rarity, and the sum is
        normalised by the memory's length (distinct words) against the mean."""
        params: dict[str, Any] = {
            "uid": user_id,
            "k": k,
            "q": pg_tsquery(terms),
            "avgdl": max(weights.avgdl, 1.0),
        }
        parts = []
        for n, term in enumerate(scored):
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

    async def common_lexemes(self) -> dict[str, float]:
        """PostgreSQL: the lexemes ANALYZE found most common in the (owner-tagged,
        migration 0009) words of memories, each with about how many memories hold it
        (pg_stats' most common elements of the column, about a thousand)."""
        rows = await self.session.execute(
            text(
                "SELECT e.lexeme, e.freq * c.reltuples FROM pg_stats s "
                "JOIN pg_class c ON c.oid = CAST('memories' AS regclass) "
                "CROSS JOIN LATERAL unnest(CAST(CAST(s.most_common_elems AS text) AS text[]), "
                "s.most_common_elem_freqs) AS e(lexeme, freq) "
                "WHERE s.schemaname = current_schema() AND s.tablename = 'memories' "
                "AND s.attname = 'search_words'"
            )
        )
        return {str(r[0]): max(0.0, float(r[1] or 0)) for r in rows}

    async def stems(self, terms: Sequence[str]) -> dict[str, list[str]]:
        """PostgreSQL: each term's English lexemes, as memories are indexed (a term
        tagged with a user's id is ``f"{user_id}_{lexeme}"``; none for a stopword)."""
        rows = await self.session.execute(
            text(
                "SELECT term, tsvector_to_array(to_tsvector('english', term)) "
                "FROM unnest(CAST(:terms AS text[])) AS term"
            ),
            {"terms": list(terms)},
        )
        return {str(r[0]): list(r[1]) for r in rows}

    async def term_counts(self, user_id: int, terms: Sequence[str], cap: int) -> dict[str, float]:
        """PostgreSQL: in how many of the user's memories each term is, counting at
        most ``cap`` (the GIN index's entries; meant for rare terms, see terms.py)."""
        if not terms:
            return {}
        # one uncorrelated count per term, each planned for its own word (GIN)
        counts = ", ".join(
            "(SELECT count(*) FROM (SELECT 1 FROM memories WHERE search_words @@ "  # noqa: S608
            f"{_PG_OWNED.format(f':q{n}')} LIMIT :cap) m{n})"  # only numbered names
            for n in range(len(terms))
        )
        params: dict[str, Any] = {f"q{n}": pg_tsquery([t]) for n, t in enumerate(terms)}
        params |= {"uid": user_id, "cap": cap}
        row = (await self.session.execute(text(f"SELECT {counts}"), params)).one()
        return {t: float(n) for t, n in zip(terms, row, strict=True)}
