"""Hybrid ranking of a user's memories for one query (pure functions, no I/O).

The candidate pool is the union of the best dense and the best full-text
matches. Each candidate gets

    base = (w_dense * cosine + w_text * text / best_text) / (w_dense + w_text)
           + w_time * [the memory is from a date the query names]
           + w_recency * 0.5 ** (age / half_life)

then a thread term, ``w_thread`` times the best base score in its thread (a
conversation whose turns match is about the subject), and finally the turns
next to the strongest hits inherit a share of their score: in a dialogue the
answer follows the question that matched ("how long have you done yoga?" ->
"about 3 years"), so adjacent turns of the same thread are pulled in. Scores
are compared, not ranks, so a strong match in one list is not diluted by its
rank in the other. Weights were chosen on LoCoMo (``mongars bench memory``)
and checked by cross-validation across its conversations.
"""

from __future__ import annotations

import calendar
import contextlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class FusionWeights:
    dense: float = 1.0
    text: float = 1.0
    recency: float = 0.002
    half_life_days: float = 90.0
    time: float = 0.3  # memories from a date the query names
    thread: float = 0.5  # share of the best score in the same thread
    after: tuple[float, ...] = (0.9, 0.8)  # next turns of a strong hit inherit this share
    before: tuple[float, ...] = (0.7, 0.6)  # previous turns
    sources: int = 20  # how many of the best hits pull in their neighbours
    common_term_share: float = 0.01  # full-text terms in more memories than this are left out


@dataclass(slots=True)
class Candidate:
    id: int
    thread_id: str | None
    created_at: float  # unix seconds
    dense: float = 0.0  # cosine similarity
    text: float = 0.0  # raw full-text score, higher is better (0: no match)
    score: float = field(default=0.0, compare=False)


# -- dates named in a query ---------------------------------------------------------

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS |= {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MN = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MN})\.?,?\s+(\d{{4}})\b", re.I)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MN})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_MONTH_YEAR = re.compile(rf"\b({_MN})\.?,?\s+(\d{{4}})\b", re.I)
_YEAR = re.compile(r"\b(?:in|of|during|since|from|by|throughout)\s+((?:19|20)\d\d)\b", re.I)
_ISO = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
_RELATIVE = re.compile(r"\b(yesterday|today|last (?:week|month|year))\b", re.I)


def _span(year: int, month: int | None = None, day: int | None = None) -> tuple[float, float]:
    if day is not None and month is not None:
        start = datetime(year, month, day, tzinfo=UTC)
        return start.timestamp(), (start + timedelta(days=1)).timestamp()
    if month is not None:
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return start.timestamp(), end.timestamp()
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def date_spans(query: str, now: datetime) -> list[tuple[float, float]]:
    """[start, end) unix-second ranges of the dates a query names: '13 October, 2023',
    'October 13, 2023', 'July 2023', 'in 2022', '2023-05-08', 'yesterday', 'last month'."""
    spans: list[tuple[float, float]] = []
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], year: int, month: int | None, day: int | None) -> None:
        if any(a <= match.start() < b for a, b in taken):
            return
        taken.append((match.start(), match.end()))
        with contextlib.suppress(ValueError):  # 31 February and the like
            spans.append(_span(year, month, day))

    for m in _ISO.finditer(query):
        add(m, int(m[1]), int(m[2]), int(m[3]))
    for m in _DAY_MONTH_YEAR.finditer(query):
        add(m, int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    for m in _MONTH_DAY_YEAR.finditer(query):
        add(m, int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    for m in _MONTH_YEAR.finditer(query):
        add(m, int(m[2]), _MONTHS[m[1].lower()], None)
    for m in _YEAR.finditer(query):
        add(m, int(m[1]), None, None)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for m in _RELATIVE.finditer(query):
        word = m[1].lower()
        if word in ("today", "yesterday"):
            start = today - timedelta(days=1 if word == "yesterday" else 0)
            spans.append((start.timestamp(), (start + timedelta(days=1)).timestamp()))
        elif word.endswith("week"):
            spans.append(((today - timedelta(days=14)).timestamp(), today.timestamp()))
        elif word.endswith("month"):
            last = today.replace(day=1) - timedelta(days=1)
            spans.append(_span(last.year, last.month))
        else:
            spans.append(_span(today.year - 1))
    return spans


def time_match(at: float, spans: Sequence[tuple[float, float]]) -> float:
    """1 inside a named span, decaying over days after it (talk about an event often
    comes a few days later) and faster before it."""
    best = 0.0
    for start, end in spans:
        if at < start:
            distance = (start - at) / DAY
        elif at < end:
            return 1.0
        else:
            distance = (at - end) / DAY / 3.0
        best = max(best, math.exp(-distance))
    return best


# -- scoring ------------------------------------------------------------------------


class Scorer:
    """Scores one query's candidates (see the module docstring)."""

    def __init__(
        self, weights: FusionWeights, spans: Sequence[tuple[float, float]], now: float
    ) -> None:
        self.weights = weights
        self.spans = spans
        self.now = now
        self.best_text = 1.0
        self.by_thread: dict[str, float] = {}  # best base score per thread

    def base(self, c: Candidate) -> float:
        w = self.weights
        score = (w.dense * c.dense + w.text * c.text / self.best_text) / ((w.dense + w.text) or 1)
        if self.spans and w.time:
            score += w.time * time_match(c.created_at, self.spans)
        if w.recency:
            age = max(0.0, self.now - c.created_at) / DAY
            score += w.recency * math.pow(0.5, age / w.half_life_days)
        return score

    def score_pool(self, pool: Iterable[Candidate]) -> None:
        """Base score plus the thread term, for the candidates of the first stage."""
        pool = list(pool)
        self.best_text = max((c.text for c in pool), default=0.0) or 1.0
        for c in pool:
            c.score = self.base(c)
            if c.thread_id is not None:
                best = self.by_thread.get(c.thread_id, -math.inf)
                self.by_thread[c.thread_id] = max(best, c.score)
        for c in pool:
            self.add_thread_term(c)

    def score_late(self, c: Candidate) -> None:
        """A neighbour that was not in the pool: scored like the others."""
        c.score = self.base(c)
        self.add_thread_term(c)

    def add_thread_term(self, c: Candidate) -> None:
        if c.thread_id is not None and c.thread_id in self.by_thread:
            c.score += self.weights.thread * self.by_thread[c.thread_id]

    def sources(self, pool: Iterable[Candidate]) -> list[Candidate]:
        """The strongest threaded hits, whose neighbours are worth a look."""
        threaded = sorted((c for c in pool if c.thread_id is not None), key=lambda c: -c.score)
        return threaded[: self.weights.sources]

    def spread(
        self, scored: dict[int, Candidate], links: Iterable[tuple[int, int, int]]
    ) -> list[tuple[int, float]]:
        """(id, final score) best first, ties to the newer memory. Each candidate keeps
        the larger of its own score and the share it inherits from a strong hit
        ``offset`` turns away (links: source, neighbour, offset)."""
        final = {i: c.score for i, c in scored.items()}
        for source, neighbour, offset in links:
            shares = self.weights.after if offset > 0 else self.weights.before
            if source not in scored or neighbour not in final or not 0 < abs(offset) <= len(shares):
                continue
            final[neighbour] = max(final[neighbour], shares[abs(offset) - 1] * scored[source].score)
        return sorted(final.items(), key=lambda kv: (-kv[1], -scored[kv[0]].created_at))


def weights_from(cfg: Any) -> FusionWeights:
    """FusionWeights from ``MemorySettings``."""
    return FusionWeights(
        dense=cfg.dense_weight,
        text=cfg.text_weight,
        recency=cfg.recency_weight,
        half_life_days=cfg.half_life_days,
        time=cfg.time_weight,
        thread=cfg.thread_weight,
        after=tuple(cfg.neighbours_after),
        before=tuple(cfg.neighbours_before),
        sources=cfg.neighbour_sources,
        common_term_share=cfg.common_term_share,
    )
