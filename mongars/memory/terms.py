"""Full-text term statistics for recall: which words to match, and their weights.

BM25 weighs a word by its rarity (inverse document frequency). SQLite's FTS5
computes that itself; on PostgreSQL, whose ``ts_rank_cd`` has no notion of
rarity, the repository ranks by BM25 computed in SQL from the frequencies
kept here (search_repository.py). Here too, a word found in so many memories
that matching it would rank a large share of the store for a small share of
the score is left out (when every word is that common, all of them are
required instead). Frequencies are counted over all users' memories, as FTS5
does, and kept for a few minutes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mongars.db.fulltext import query_terms
from mongars.memory.search_repository import SearchRepository, TermWeights

TERM_STATS_TTL_S = 600.0
COMMON_MIN_DOCS = 2000  # a word in fewer memories than this is always matched
TERM_SAMPLE = 20_000  # SQLite: newest memories in which words are counted
MAX_TERMS = 50_000  # words whose frequency is kept


@dataclass(frozen=True, slots=True)
class TextPlan:
    terms: list[str]
    require_all: bool
    weights: TermWeights | None  # PostgreSQL: BM25 weights of the terms


class TermStats:
    def __init__(self, common_share: float) -> None:
        self.common_share = common_share
        self._docs: dict[str, tuple[float, float]] = {}  # term -> (memories with it, until)
        self._total: tuple[int, float, float] = (0, 0.0, 0.0)  # (count, mean length, until)

    async def plan(self, repo: SearchRepository, query: str) -> TextPlan:
        terms = query_terms(query)
        postgres = repo.dialect == "postgresql"
        if not terms or (len(terms) < 2 and not postgres):
            return TextPlan(terms, False, None)
        now = time.monotonic()
        if now > self._total[2]:
            count, length = await repo.collection_size()
            self._total = (count, length, now + TERM_STATS_TTL_S)
        total, length = self._total[0], self._total[1]
        if total < COMMON_MIN_DOCS and not postgres:
            return TextPlan(terms, False, None)
        # SQLite counts in a sample of the newest; PostgreSQL over the table
        sample = total if postgres else min(total, TERM_SAMPLE)
        limit = max(COMMON_MIN_DOCS, self.common_share * total)
        cap = max(1, math.ceil(limit * sample / max(total, 1)))  # the limit, within the sample
        stale = [t for t in terms if self._docs.get(t, (0, 0.0))[1] < now]
        if stale:
            counts = await repo.term_counts(stale, cap, after_id=total - sample)
            for term, n in counts.items():
                self._docs[term] = (n * total / max(sample, 1), now + TERM_STATS_TTL_S)
            while len(self._docs) > MAX_TERMS:
                self._docs.pop(next(iter(self._docs)))
        docs = {t: self._docs[t][0] for t in terms}
        kept = [t for t in terms if docs[t] < limit]
        plan_terms, require_all = (kept, False) if kept else (terms, True)
        weights = TermWeights.bm25(docs, total, length) if postgres else None
        return TextPlan(plan_terms, require_all, weights)
