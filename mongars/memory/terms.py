"""Full-text term statistics for recall: which words to match, and their weights.

BM25 weighs a word by its rarity (inverse document frequency). SQLite's FTS5
computes that itself; on PostgreSQL, whose ``ts_rank_cd`` has no notion of
rarity, the repository ranks by BM25 computed in SQL from the frequencies
kept here (text_repository.py). Here too, in a large memory, the words found
in so many memories that matching them would read a large share of the store
for a small share of the score are left out of the match (see _choose). Each
user's words are terms of their own (migration 0009),
so frequencies are those of the user's memories: on SQLite counted (a few
posting list pages), on PostgreSQL read from the column's statistics or
counted; either way kept for a few minutes per user and word.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mongars.db.fulltext import query_terms
from mongars.memory.text_repository import TermWeights, TextRepository, common_counts

TERM_STATS_TTL_S = 600.0
COMMON_MIN_DOCS = 1000  # the least limit of matched memories (a smaller memory: every word)
MAX_TERMS = 50_000  # words whose frequency is kept
MAX_USERS = 10_000  # users whose number of memories is kept


@dataclass(frozen=True, slots=True)
class TextPlan:
    terms: list[str]  # the words matched (none: no full-text match)
    weights: TermWeights | None  # PostgreSQL: BM25 weights of the query's words
    scored: list[str] | None = None  # PostgreSQL: the words weighing the rows found


class TermStats:
    def __init__(self, common_share: float) -> None:
        self.common_share = common_share
        # (user, term) -> (the user's memories with it, until when it holds)
        self._docs: dict[tuple[int, str], tuple[float, float]] = {}
        self._total: tuple[int, float, float] = (0, 0.0, 0.0)  # (count, mean length, until)
        self._sizes: dict[int, tuple[int, float]] = {}  # user -> (memories, until)
        # PostgreSQL: the column statistics' common lexemes (until when they hold),
        # and the lexemes of each word seen
        self._common: tuple[dict[str, float], float] = ({}, 0.0)
        self._stems: dict[str, list[str]] = {}

    async def plan(
        self, repo: TextRepository, user_id: int, query: str, user_size: int | None = None
    ) -> TextPlan:
        """``user_size``: how many memories the user has, when known (SQLite's index
        knows it); else counted, and kept for a few minutes."""
        terms = query_terms(query)
        postgres = repo.dialect == "postgresql"
        if not terms:
            return TextPlan(terms, None)
        now = time.monotonic()
        if user_size is None:
            user_size = await self._user_size(repo, user_id, now)
        limit = max(COMMON_MIN_DOCS, math.ceil(self.common_share * user_size))
        if not postgres:
            if user_size < limit:
                return TextPlan(terms, None)
            return self._choose(terms, await self._counts(repo, user_id, terms, limit), limit)
        if now > self._total[2]:
            count, length = await repo.collection_size()
            self._total = (count, length, now + TERM_STATS_TTL_S)
        total, length = self._total[0], self._total[1]
        docs = await self._counts(repo, user_id, terms, limit)
        weights = TermWeights.bm25(docs, total, length)
        if user_size < limit:
            return TextPlan(terms, weights, terms)
        return self._choose(terms, docs, limit, weights)

    async def _counts(
        self, repo: TextRepository, user_id: int, terms: list[str], limit: int
    ) -> dict[str, float]:
        """How many of the user's memories hold each term (counting up to ``limit``),
        kept a few minutes per (user, term)."""
        now = time.monotonic()
        stale = [t for t in terms if self._docs.get((user_id, t), (0, 0.0))[1] < now]
        if stale:
            if repo.dialect == "postgresql":
                counts = await self._pg_counts(repo, user_id, stale, limit, now)
            else:
                counts = {
                    t: float(n)
                    for t, n in (await repo.user_term_counts(user_id, stale, limit)).items()
                }
            for term, n in counts.items():
                self._docs.pop((user_id, term), None)  # re-inserted last: evicted last
                self._docs[(user_id, term)] = (n, now + TERM_STATS_TTL_S)
        docs = {t: self._docs[(user_id, t)][0] for t in terms}
        while len(self._docs) > MAX_TERMS:
            self._docs.pop(next(iter(self._docs)))
        return docs

    async def _pg_counts(
        self, repo: TextRepository, user_id: int, terms: list[str], cap: int, now: float
    ) -> dict[str, float]:
        """PostgreSQL: the column statistics' counts of common words (read every few
        minutes), the others counted (rare: a few index pages each); the words'
        lexemes are kept (they never change)."""
        if now > self._common[1]:
            self._common = (await repo.common_lexemes(), now + TERM_STATS_TTL_S)
        unknown = [t for t in terms if t not in self._stems]
        if unknown:
            self._stems |= await repo.stems(unknown)
            while len(self._stems) > MAX_TERMS:
                self._stems.pop(next(iter(self._stems)))
        stems = {t: self._stems.get(t, []) for t in terms}
        counts, rare = common_counts(user_id, stems, self._common[0])
        return counts | await repo.term_counts(user_id, rare, cap)

    async def _user_size(self, repo: TextRepository, user_id: int, now: float) -> int:
        size, until = self._sizes.get(user_id, (0, 0.0))
        if until < now:
            size = await repo.user_size(user_id)
            self._sizes.pop(user_id, None)
            self._sizes[user_id] = (size, now + TERM_STATS_TTL_S)
            while len(self._sizes) > MAX_USERS:
                self._sizes.pop(next(iter(self._sizes)))
        return size

    @staticmethod
    def _choose(
        terms: list[str], docs: dict[str, float], limit: float, weights: TermWeights | None = None
    ) -> TextPlan:
        """The rarest words are matched, as long as the memories they are in add up to
        fewer than ``limit``: the work of a match grows with them (PostgreSQL reads
        each matched row), while a word in that many memories tells little of which
        ones matter. On PostgreSQL the words left out still weigh the memories found
        (Elasticsearch's common terms query). When even the rarest word is that
        common, nothing is matched: the meaning (dense) ranks such a query alone."""
        kept: set[str] = set()
        found = 0.0
        for term in sorted(terms, key=lambda t: docs[t]):
            found += docs[term]
            if found >= limit:
                break
            kept.add(term)
        scored = terms if weights is not None else None
        return TextPlan([t for t in terms if t in kept], weights, scored)
