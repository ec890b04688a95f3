"""Full-text term statistics for recall: which words to match, and their weights.

BM25 weighs a word by its rarity (inverse document frequency). SQLite's FTS5
computes that itself; on PostgreSQL, whose ``ts_rank_cd`` has no notion of
rarity, the repository ranks by BM25 computed in SQL from the frequencies
kept here (search_repository.py). Here too, a word found in so many memories
that matching it would rank a large share of the store for a small share of
the score is left out (when every word is that common, all of them are
required instead). Each user's words are terms of their own (migration 0009),
so frequencies are those of the user's memories: on SQLite counted (a few
posting list pages), on PostgreSQL read from the column's statistics or
counted; either way kept for a few minutes per user and word.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mongars.db.fulltext import query_terms
from mongars.memory.text_repository import TermWeights, TextRepository

TERM_STATS_TTL_S = 600.0
COMMON_MIN_DOCS = 2000  # a word in fewer memories than this is always matched
MAX_TERMS = 50_000  # words whose frequency is kept
MAX_USERS = 10_000  # users whose number of memories is kept


@dataclass(frozen=True, slots=True)
class TextPlan:
    terms: list[str]
    require_all: bool
    weights: TermWeights | None  # PostgreSQL: BM25 weights of the terms


class TermStats:
    def __init__(self, common_share: float) -> None:
        self.common_share = common_share
        # (user, term) -> (the user's memories with it, until when it holds)
        self._docs: dict[tuple[int, str], tuple[float, float]] = {}
        self._total: tuple[int, float, float] = (0, 0.0, 0.0)  # (count, mean length, until)
        self._sizes: dict[int, tuple[int, float]] = {}  # user -> (memories, until)

    async def plan(
        self, repo: TextRepository, user_id: int, query: str, user_size: int | None = None
    ) -> TextPlan:
        """``user_size``: how many memories the user has, when known (SQLite's index
        knows it); else counted, and kept for a few minutes."""
        terms = query_terms(query)
        postgres = repo.dialect == "postgresql"
        if not terms or (len(terms) < 2 and not postgres):
            return TextPlan(terms, False, None)
        now = time.monotonic()
        if user_size is None:
            user_size = await self._user_size(repo, user_id, now)
        limit = max(COMMON_MIN_DOCS, math.ceil(self.common_share * user_size))
        if not postgres:
            if user_size < limit:
                return TextPlan(terms, False, None)
            return self._choose(terms, await self._counts(repo, user_id, terms, limit), limit)
        if now > self._total[2]:
            count, length = await repo.collection_size()
            self._total = (count, length, now + TERM_STATS_TTL_S)
        total, length = self._total[0], self._total[1]
        docs = await self._counts(repo, user_id, terms, limit)
        return self._choose(terms, docs, limit, TermWeights.bm25(docs, total, length))

    async def _counts(
        self, repo: TextRepository, user_id: int, terms: list[str], limit: int
    ) -> dict[str, float]:
        """How many of the user's memories hold each term (counting up to ``limit``),
        kept a few minutes per (user, term)."""
        now = time.monotonic()
        stale = [t for t in terms if self._docs.get((user_id, t), (0, 0.0))[1] < now]
        if stale:
            if repo.dialect == "postgresql":
                counts = await repo.term_counts(user_id, stale, limit)
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
        kept = [t for t in terms if docs[t] < limit]
        return TextPlan(kept, False, weights) if kept else TextPlan(terms, True, weights)
