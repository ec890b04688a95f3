"""`POST /api/v1/review/rag-context`: references from monGARS's own document index.

Each reference is a passage found by the hybrid search (a repository is a
collection, ``file_path`` the document's path in it); its summary is the
passage's sentences that share the most words with the query (extractive, so it
is always text from the file). Focus areas are the sections the references sit
in, then the query's key terms the references contain.
"""

from __future__ import annotations

import re

from mongars.db.fulltext import query_terms, words
from mongars.research.schemas import RagContextRequest, RagContextResponse, RagReference
from mongars.research.search import ScoredChunk
from mongars.research.service import DocumentService

DEFAULT_RESULTS = 5
SUMMARY_CHARS = 300
MAX_FOCUS = 6
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_HEADING = re.compile(r"^#{1,6}\s.*$", re.MULTILINE)


def summarize(text: str, terms: list[str], limit: int = SUMMARY_CHARS) -> str:
    """The passage's best-matching sentences, in their order, within ``limit`` chars."""
    plain = _HEADING.sub("", text)  # headings are focus areas, not summary text
    sentences = [s.strip() for s in _SENTENCE.split(plain.strip() or text) if s.strip()]
    if not sentences:
        return ""
    wanted = set(terms)
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-len(wanted & set(words(sentences[i]))), i),
    )
    picked: list[int] = []
    size = 0
    for i in ranked:
        if picked and size + len(sentences[i]) + 1 > limit:
            continue
        picked.append(i)
        size += len(sentences[i]) + 1
        if size >= limit:
            break
    summary = " ".join(sentences[i] for i in sorted(picked))
    return summary if len(summary) <= limit else summary[: limit - 1].rstrip() + "…"


def focus_areas(hits: list[ScoredChunk], terms: list[str]) -> list[str]:
    areas: dict[str, None] = {}
    for hit in hits:
        section = hit.row.section.split(" > ")[-1].strip() if hit.row.section else ""
        if section and section.lower() not in {a.lower() for a in areas}:
            areas[section] = None
    found = {w for h in hits for w in words(h.row.text)}
    for term in terms:
        if term in found and term not in {a.lower() for a in areas}:
            areas[term] = None
    return list(areas)[:MAX_FOCUS]


async def rag_context(
    documents: DocumentService, user_id: int, body: RagContextRequest
) -> RagContextResponse:
    k = body.max_results or DEFAULT_RESULTS
    hits = await documents.search.search(user_id, body.query, k, body.repositories)
    terms = query_terms(body.query)
    return RagContextResponse(
        enabled=True,
        focus_areas=focus_areas(hits, terms),
        references=[
            RagReference(
                repository=h.row.collection,
                file_path=h.row.path,
                summary=summarize(h.row.text, terms),
                score=h.score,
                url=h.row.url,
            )
            for h in hits
        ],
    )
