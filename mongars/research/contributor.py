"""How documents shape a turn: the best passages go into the prompt, numbered, and the
answer's citations record them; a question nothing covers becomes a knowledge gap
(researched on the web only when enabled; otherwise the model is told what it lacks)."""

from __future__ import annotations

import logging

from mongars.conversation.plan import TurnContributor, TurnPlan
from mongars.llm.base import ChatMessage, LLMProvider
from mongars.research.curiosity import RESEARCH_COLLECTION, Curiosity, assess
from mongars.research.search import ScoredChunk
from mongars.research.service import DocumentService
from mongars.settings import ResearchSettings

log = logging.getLogger(__name__)
HEADER = "Sources (cite them as [n] when you use them; never copy these lines):\n<sources>"
FOOTER = "</sources>"
EXCERPT_CHARS = 280
UNKNOWN = (
    "Nothing in your memory or documents covers: {terms}. If you do not know the answer, "
    "say so plainly instead of guessing."
)


class DocumentsContributor(TurnContributor):
    name = "documents"

    def __init__(
        self,
        documents: DocumentService,
        curiosity: Curiosity,
        llm: LLMProvider,
        settings: ResearchSettings,
    ) -> None:
        self.documents = documents
        self.curiosity = curiosity
        self.llm = llm
        self.settings = settings

    def _budget(self, plan: TurnPlan) -> int:
        return min(self.settings.context_tokens, (self.llm.context_window - plan.max_tokens) // 4)

    async def contribute(self, plan: TurnPlan) -> None:
        budget = self._budget(plan)
        if budget <= 0 or self.settings.passages == 0:
            return
        found = await self._passages(plan)
        best = max((p.dense for p in found), default=0.0)
        a = assess(
            plan.message, [p.row.text for p in found] + plan.context_parts, best, self.settings
        )
        if a.gap:
            gap_id = await self.curiosity.record(plan.user.id, plan.message, a)
            record = {**a.to_json(), "gap_id": gap_id, "research": "off"}
            if self.settings.web:
                outcome = await self.curiosity.research(plan.user.id, gap_id, plan.message)
                record |= {"research": outcome.status, "sources": len(outcome.sources)}
                if outcome.status == "researched":
                    found = await self._passages(plan, only=[RESEARCH_COLLECTION]) or found
            else:
                plan.system_parts.append(UNKNOWN.format(terms=", ".join(a.missing_terms)))
            plan.steering["curiosity"] = record
        await self._cite(plan, found, budget)

    async def _passages(self, plan: TurnPlan, only: list[str] | None = None) -> list[ScoredChunk]:
        hits = await self.documents.search.search(
            plan.user.id, plan.message, k=2 * self.settings.passages, collections=only
        )
        s = self.settings
        return [
            h for h in hits if h.score >= s.min_passage_score and h.dense >= s.min_passage_cosine
        ]

    async def _cite(self, plan: TurnPlan, found: list[ScoredChunk], budget: int) -> None:
        lines: list[str] = []
        used = (await self.llm.message_tokens([ChatMessage("system", f"{HEADER}\n{FOOTER}")]))[0]
        for hit in found:
            if len(lines) >= self.settings.passages:
                break
            r = hit.row
            n = len(lines) + 1
            where = r.path + (f", p. {r.page}" if r.page else "")
            label = f"{r.title} ({where})" + (f" - {r.section}" if r.section else "")
            line = f"[{n}] {label}: {r.text}"
            cost = (await self.llm.message_tokens([ChatMessage("system", line)]))[0]
            if used + cost > budget:
                continue
            used += cost
            lines.append(line)
            plan.citations.append(
                {
                    "n": n,
                    "chunk_id": r.id,
                    "document_id": r.document_id,
                    "collection": r.collection,
                    "path": r.path,
                    "title": r.title,
                    "section": r.section,
                    "page": r.page,
                    "url": r.url,
                    "score": hit.score,
                    "excerpt": r.text[:EXCERPT_CHARS],
                }
            )
        if lines:
            plan.context_parts.append("\n".join([HEADER, *lines, FOOTER]))
            plan.steering["documents"] = {"cited": len(lines), "tokens": used, "budget": budget}
