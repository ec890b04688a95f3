"""Curiosity engine: does what monGARS has cover a question? If not, record the gap and,
only when web research is enabled, run one bounded research step.

Coverage is measured, not guessed: the question's key terms (stopwords and
question words out) are looked for in the passages and memories retrieved for
it, and the best passage's cosine similarity is kept. A question is a gap when
both are low (settings: gap_coverage, gap_score). Chit-chat (no question form, or
no key term) is never a gap.

Research: a web search (SearxNG when configured, else DuckDuckGo's HTML page),
the first pages fetched by the Iris fetcher (robots.txt, SSRF guard, caps), each
ingested into the asker's own "research" collection, so the answer can cite them
and the user can see and delete them. Research text is context for the answer;
the user's stored message is never changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mongars.db.engine import unit_of_work
from mongars.db.fulltext import query_terms, words
from mongars.errors import DomainError
from mongars.research.extract import ExtractedDocument, estimate_pages
from mongars.research.fetcher import FetchedPage, FetcherConfig, FetchError, IrisFetcher
from mongars.research.models import KnowledgeGap
from mongars.research.repository import DocumentRepository
from mongars.research.service import Actor, DocumentService
from mongars.research.websearch import DuckDuckGoHTMLSearch, SearxNGSearch
from mongars.settings import ResearchSettings

log = logging.getLogger(__name__)
RESEARCH_COLLECTION = "research"
RESEARCH_TIMEOUT_S = 30.0
_QUESTION_WORDS = frozenset(
    """what who whom whose when where why how which is are was were do does did can could
    should would will explain describe define tell list compare""".split()
)
_FILLER = frozenset("please know about me something thing things anything mean".split())


@dataclass
class Assessment:
    is_question: bool
    key_terms: list[str]
    missing_terms: list[str]
    coverage: float  # share of key terms found in what was retrieved
    best_score: float  # best passage cosine
    gap: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "gap": self.gap,
            "coverage": round(self.coverage, 3),
            "best_score": round(self.best_score, 3),
            "missing_terms": self.missing_terms,
        }


@dataclass
class ResearchOutcome:
    status: str  # researched | failed
    sources: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def key_terms(question: str) -> list[str]:
    return [t for t in query_terms(question) if t not in _QUESTION_WORDS and t not in _FILLER]


def looks_like_question(message: str) -> bool:
    found = words(message)
    return bool(found) and (message.rstrip().endswith("?") or found[0] in _QUESTION_WORDS)


def assess(
    question: str, found_texts: Sequence[str], best_score: float, settings: ResearchSettings
) -> Assessment:
    terms = key_terms(question)
    haystack = {w for text in found_texts for w in words(text)}
    missing = [t for t in terms if t not in haystack]
    coverage = 1.0 - len(missing) / len(terms) if terms else 1.0
    is_question = looks_like_question(question)
    gap = (
        is_question
        and bool(terms)
        and coverage < settings.gap_coverage
        and best_score < settings.gap_score
    )
    return Assessment(is_question, terms, missing, coverage, best_score, gap)


class Curiosity:
    def __init__(self, documents: DocumentService, settings: ResearchSettings) -> None:
        self.documents = documents
        self.settings = settings

    async def record(self, user_id: int, question: str, a: Assessment) -> int:
        async with unit_of_work(self.documents.sessions) as session:
            gap = await DocumentRepository(session).add_gap(
                KnowledgeGap(
                    user_id=user_id,
                    question=question[:4000],
                    missing_terms=a.missing_terms,
                    coverage=a.coverage,
                    best_score=a.best_score,
                    status="open",
                    sources=[],
                )
            )
            return gap.id

    async def research(self, user_id: int, gap_id: int, question: str) -> ResearchOutcome:
        """Search the web, fetch and ingest the first pages; never raises (the outcome
        says what failed). Only call when settings.web is on."""
        try:
            outcome = await asyncio.wait_for(self._research(user_id, question), RESEARCH_TIMEOUT_S)
        except TimeoutError:
            outcome = ResearchOutcome(
                "failed", error=f"research took over {RESEARCH_TIMEOUT_S:.0f} s"
            )
        except (FetchError, DomainError) as exc:
            outcome = ResearchOutcome("failed", error=str(exc))
        except Exception as exc:  # the web is hostile input: a surprise fails research only
            log.exception("research for gap %s failed", gap_id)
            outcome = ResearchOutcome("failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        async with unit_of_work(self.documents.sessions) as session:
            await DocumentRepository(session).update_gap(
                gap_id, status=outcome.status, sources=outcome.sources, error=outcome.error
            )
        return outcome

    def fetcher_config(self) -> FetcherConfig:
        s = self.settings
        return FetcherConfig(
            user_agent=s.user_agent,
            timeout_s=s.fetch_timeout_s,
            max_bytes=s.fetch_max_bytes,
            min_interval_s=s.fetch_host_interval_s,
            allow_hosts=frozenset(s.allow_private_hosts),
        )

    def web_search(self, config: FetcherConfig) -> SearxNGSearch | DuckDuckGoHTMLSearch:
        if self.settings.searxng_url:
            return SearxNGSearch(self.settings.searxng_url, allow_private=True, config=config)
        return DuckDuckGoHTMLSearch(config=config)

    async def _research(self, user_id: int, question: str) -> ResearchOutcome:
        config = self.fetcher_config()
        engine = self.web_search(config)
        try:
            hits = await engine.search(question, limit=self.settings.research_pages * 2)
        finally:
            await engine.aclose()
        if not hits:
            return ResearchOutcome("failed", error="the web search found nothing")
        sources: list[dict[str, Any]] = []
        errors: list[str] = []
        async with IrisFetcher(config) as iris:
            for hit in hits:
                if len(sources) >= self.settings.research_pages:
                    break
                try:
                    page = await iris.fetch(hit.url)
                    document_id = await self._ingest(user_id, page)
                except (FetchError, DomainError) as exc:
                    errors.append(f"{hit.url}: {exc}")
                    continue
                sources.append(
                    {
                        "url": page.final_url,
                        "title": page.title or hit.title,
                        "document_id": document_id,
                    }
                )
        if not sources:
            return ResearchOutcome("failed", error="; ".join(errors)[:2000] or "no page fetched")
        return ResearchOutcome("researched", sources, "; ".join(errors)[:2000] or None)

    async def _ingest(self, user_id: int, page: FetchedPage) -> int:
        path = page.final_url.split("://", 1)[-1][:1000]
        if page.content:  # a PDF: the document pipeline extracts it
            result = await self.documents.ingest(
                Actor(user_id),
                RESEARCH_COLLECTION,
                path,
                page.content,
                content_type=page.content_type,
                url=page.final_url,
            )
            return result.document.id
        text = page.text.strip()
        if not text:
            raise DomainError(f"{page.final_url}: no readable text")
        extracted = ExtractedDocument(
            title=page.title or path,
            text=text,
            format="html" if "html" in page.content_type else "text",
            pages=estimate_pages(text),
            source=path,
        )
        result = await self.documents.ingest(
            Actor(user_id),
            RESEARCH_COLLECTION,
            path,
            text.encode(),
            url=page.final_url,
            extracted=extracted,
        )
        return result.document.id
