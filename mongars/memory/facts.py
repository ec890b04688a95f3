"""Fact memories with temporal validity (setting ``memory.facts``, off by default).

After a turn, the model is asked for durable facts about the user, with its
output constrained to a JSON schema (a llama.cpp grammar on the embedded model)
so it always parses. Each fact has a subject; a new fact about a subject that
already has a different valid fact closes the old one (``invalid_at``) without
deleting it, so history is kept. Failures are recorded on the turn's memory
(``facts_status = "failed"`` and the error), counted in metrics, and listed by
the API: never silent.
"""

from __future__ import annotations

import json
import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import DomainError
from mongars.llm.base import ChatMessage, Delta, GenerationParams, LLMProvider
from mongars.memory.models import Memory
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService

log = logging.getLogger(__name__)

FACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": "string", "maxLength": 60},
                    "text": {"type": "string", "maxLength": 200},
                },
                "required": ["subject", "text"],
            },
        }
    },
    "required": ["facts"],
}
INSTRUCTION = (
    "Extract durable facts about the user from this exchange: who they are, what they "
    "own, like, do, plan. One short sentence per fact, with a short subject naming what "
    'it is about (e.g. "dog name", "job", "home city"). Answer only with JSON: '
    '{"facts": [{"subject": ..., "text": ...}]}; an empty list if there are none.'
)


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    subject: str
    text: str


def parse_facts(raw: str) -> list[ExtractedFact]:
    """Validate the model's JSON; raise ValueError with the reason if it does not fit."""
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("facts"), list):
        raise ValueError("expected an object with a 'facts' list")
    facts = []
    for item in data["facts"]:
        if not isinstance(item, dict):
            raise ValueError("each fact must be an object")
        subject = str(item.get("subject", "")).strip().lower()[:60]
        text = str(item.get("text", "")).strip()[:200]
        if subject and text:
            facts.append(ExtractedFact(subject, text))
    return facts


class FactExtractor:
    def __init__(self, memory: MemoryService, llm: LLMProvider, failures: Any = None) -> None:
        self.memory = memory
        self.llm = llm
        self.failures = failures  # an OpenTelemetry counter, when metrics exist

    async def _ask(self, turn_text: str) -> str:
        messages = [ChatMessage("system", INSTRUCTION), ChatMessage("user", turn_text)]
        params = GenerationParams(max_tokens=200, temperature=0.0, json_schema=FACT_SCHEMA)
        parts: list[str] = []
        async with aclosing(self.llm.stream(messages, params)) as stream:
            async for item in stream:
                if isinstance(item, Delta):
                    parts.append(item.text)
        return "".join(parts)

    async def process(self, memory: Memory) -> list[int]:
        """Extract facts from one turn memory; returns the new fact memory ids."""
        try:
            facts = parse_facts(await self._ask(memory.text))
        except (ValueError, DomainError) as exc:
            await self._mark(memory.id, "failed", str(exc)[:500])
            if self.failures is not None:
                self.failures.add(1, {"reason": type(exc).__name__})
            log.warning("fact extraction failed for memory %s: %s", memory.id, exc)
            return []
        ids = await self.store(memory.user_id, facts, memory.id, memory.created_at)
        await self._mark(memory.id, "done", None)
        return ids

    async def store(
        self, user_id: int, facts: list[ExtractedFact], source_id: int | None, when: Any
    ) -> list[int]:
        """Add facts; a different valid fact about the same subject is closed, not deleted."""
        vectors = await self.memory.embedder.embed([f.text for f in facts])
        new_ids: list[int] = []
        async with unit_of_work(self.memory.sessions) as session:
            repo = MemoryRepository(session)
            for fact, vector in zip(facts, vectors, strict=True):
                current = await repo.valid_facts(user_id, fact.subject)
                if any(c.text.strip().lower() == fact.text.lower() for c in current):
                    continue  # already known
                for old in current:
                    old.invalid_at = when or utcnow()
                row = Memory(
                    user_id=user_id,
                    kind="fact",
                    text=fact.text,
                    subject=fact.subject,
                    valid_from=when or utcnow(),
                    created_at=when or utcnow(),
                    updated_at=utcnow(),
                    embedded=True,
                    embedding=vector,
                    source_ids=[source_id] if source_id else [],
                    meta={},
                )
                await repo.add([row])
                await repo.bump_epoch(user_id, reset=bool(current))
                new_ids.append(row.id)
        return new_ids

    async def _mark(self, memory_id: int, status: str, error: str | None) -> None:
        async with unit_of_work(self.memory.sessions) as session:
            await MemoryRepository(session).set_facts_status(memory_id, status, error)

    async def run_pending(self, limit: int = 20) -> int:
        async with unit_of_work(self.memory.sessions) as session:
            pending = await MemoryRepository(session).facts_pending(limit)
        for memory in pending:
            await self.process(memory)
        return len(pending)
