"""Consolidation: fold near-duplicate memories together and summarise old threads.

Near-duplicates: within one user and one kind, memories whose embeddings have
a cosine similarity at or above ``dedupe_similarity`` are merged into the
newest of them; its text is kept, the others' ids are added to its
``source_ids`` and they are deleted. Grouping is greedy from the newest
memory down, so every merged memory is similar to the one that absorbed it
(no chains of "similar to something similar").

Summaries: a thread idle for ``summarize_after_days`` with at least
``summarize_min_turns`` turn memories gets one ``summary`` memory, written by
the LLM from those turns (as the user may have edited them; forgotten turns
are not used). Its ``source_ids`` are the turn memories it was made from and
the turns are kept. A thread that is continued later gets a fresh summary
once it is idle again. The summary is stored only after the whole answer has
arrived: a provider error stores nothing and stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import aclosing
from datetime import timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import DomainError, EmptyOutput, ProviderError
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, LLMProvider
from mongars.memory.embeddings import Embedder
from mongars.memory.models import Memory
from mongars.memory.repository import MemoryRepository
from mongars.memory.schemas import ConsolidationReport
from mongars.settings import Settings

log = logging.getLogger(__name__)

# (stage, done, total): "dedupe" counts users, "summaries" counts threads.
Progress = Callable[[str, int, int], None]

SUMMARY_INSTRUCTION = (
    "Summarise the conversation below between a user and an assistant in a few "
    "sentences. Keep the facts, names, dates, preferences and decisions the user "
    "mentioned. Write only the summary."
)
SUMMARY_ASK = "Write the summary."
TURN_CHARS = 1500  # each turn is cut to this many characters in the summary prompt
BLOCK = 256  # rows per similarity block (BLOCK x n floats at a time)


def duplicate_groups(
    kinds: Sequence[str], matrix: np.ndarray, threshold: float
) -> list[tuple[int, list[int]]]:
    """Groups of near-duplicate rows as (keeper row, merged rows).

    Rows must be ordered newest first and unit length (a dot product is the
    cosine). Only rows of the same kind are compared.
    """
    by_kind: dict[str, list[int]] = defaultdict(list)
    for row, kind in enumerate(kinds):
        by_kind[kind].append(row)
    groups: list[tuple[int, list[int]]] = []
    for rows in by_kind.values():
        if len(rows) < 2:
            continue
        index = np.asarray(rows)
        sub = np.ascontiguousarray(matrix[index], dtype=np.float32)
        neighbours: dict[int, list[int]] = defaultdict(list)
        for start in range(0, len(rows), BLOCK):
            sims = sub[start : start + BLOCK] @ sub[start:].T
            for i, j in zip(*np.nonzero(sims >= threshold), strict=True):
                if j > i:  # the upper triangle: pairs (a, b) with a newer than b
                    neighbours[start + int(i)].append(start + int(j))
        claimed: set[int] = set()
        for a in range(len(rows)):
            if a in claimed or a not in neighbours:
                continue
            merged = [b for b in neighbours[a] if b not in claimed]
            if merged:
                claimed.update(merged)
                claimed.add(a)
                groups.append((rows[a], [rows[b] for b in merged]))
    return sorted(groups)


class Consolidator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        llm: LLMProvider | None,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.llm = llm
        self.settings = settings
        self.cfg = settings.memory

    async def run(
        self, user_id: int | None = None, progress: Progress | None = None
    ) -> ConsolidationReport:
        """Dedupe every user's memories (or one user's), then summarise old threads."""
        report = ConsolidationReport()
        async with unit_of_work(self.sessions) as session:
            repo = MemoryRepository(session)
            users = [user_id] if user_id is not None else await repo.user_ids_with_memories()
        for n, uid in enumerate(users, start=1):
            groups, merged = await self.dedupe_user(uid)
            report.duplicate_groups += groups
            report.merged += merged
            if progress:
                progress("dedupe", n, len(users))
        report.users = len(users)
        cutoff = utcnow() - timedelta(days=self.cfg.summarize_after_days)
        async with unit_of_work(self.sessions) as session:
            threads = await MemoryRepository(session).threads_to_summarize(
                cutoff, self.cfg.summarize_min_turns, user_id
            )
        if progress:
            progress("summaries", 0, len(threads))
        for n, (thread_id, owner) in enumerate(threads, start=1):
            try:
                if await self.summarize_thread(owner, thread_id) is not None:
                    report.summaries += 1
            except DomainError as exc:  # the model failed: nothing stored, stop here
                report.errors.append(f"summary of thread {thread_id}: {exc.detail}")
                log.warning("consolidation stopped: %s", report.errors[-1])
                break
            if progress:
                progress("summaries", n, len(threads))
        return report

    async def dedupe_user(self, user_id: int) -> tuple[int, int]:
        """(groups, memories merged away) for one user."""
        async with unit_of_work(self.sessions) as session:
            rows = await MemoryRepository(session).dedupe_candidates(user_id)
        if len(rows) < 2:
            return 0, 0
        ids = [r[0] for r in rows]
        kinds = [r[1] for r in rows]
        matrix = np.vstack([r[2] for r in rows]).astype(np.float32, copy=False)
        groups = await asyncio.to_thread(
            duplicate_groups, kinds, matrix, self.cfg.dedupe_similarity
        )
        merged = 0
        if groups:
            async with unit_of_work(self.sessions) as session:
                repo = MemoryRepository(session)
                for keeper, others in groups:
                    merged += await repo.merge(user_id, ids[keeper], [ids[o] for o in others])
        return len(groups), merged

    async def summarize_thread(self, user_id: int, thread_id: str) -> int | None:
        """Write the thread's summary memory; its id, or None if nothing to summarise."""
        if self.llm is None:
            raise ProviderError("no model is configured to write summaries")
        async with unit_of_work(self.sessions) as session:
            thread, turns = await MemoryRepository(session).thread_for_summary(user_id, thread_id)
        if thread is None or not turns:
            return None
        used, transcript = await self._transcript(turns)
        text = await self._generate(transcript)
        vector = (await self.embedder.embed([text]))[0]
        seen = {m.id: m.updated_at for m in used}
        async with unit_of_work(self.sessions) as session:
            repo = MemoryRepository(session)
            current = await repo.by_ids(user_id, list(seen))
            if {m.id: m.updated_at for m in current} != seen:
                return None  # a turn was edited or forgotten meanwhile: next run
            summary = Memory(
                user_id=user_id,
                kind="summary",
                thread_id=thread_id,
                text=text,
                created_at=thread.updated_at,  # what it covers ends at the last activity
                updated_at=utcnow(),
                embedded=True,
                embedding=vector,
                source_ids=[m.id for m in used],
                meta={"model": self.llm.model_id, "turns": len(used)},
            )
            await repo.replace_summary(summary)
            return summary.id

    async def _transcript(self, turns: list[Memory]) -> tuple[list[Memory], str]:
        """The turns that fit the model's window (oldest first) and their transcript."""
        assert self.llm is not None
        # one line per turn: a transcript-style prompt ("User: ...") would make a base
        # model continue the conversation instead of summarising it
        pieces = ["- " + " ".join(m.text[:TURN_CHARS].split()) for m in turns]
        costs = await self.llm.message_tokens([ChatMessage("system", p) for p in pieces])
        fixed = sum(await self.llm.message_tokens(_messages("")))
        budget = (
            self.llm.context_window
            - self.cfg.summary_max_tokens
            - fixed
            - await self.llm.prompt_overhead()
        )
        used: list[Memory] = []
        lines: list[str] = []
        for memory, piece, cost in zip(turns, pieces, costs, strict=True):
            if cost > budget:
                break
            budget -= cost
            used.append(memory)
            lines.append(piece)
        if not used:
            raise ProviderError("the model's context window is too small for a summary")
        return used, "\n".join(lines)

    async def _generate(self, transcript: str) -> str:
        assert self.llm is not None
        params = GenerationParams(
            max_tokens=self.cfg.summary_max_tokens,
            temperature=0.2,
            top_p=0.95,
            seed=self.settings.llm.seed,
        )
        parts: list[str] = []
        finished = False
        async with aclosing(self.llm.stream(_messages(transcript), params)) as stream:
            async for item in stream:
                if isinstance(item, Delta):
                    parts.append(item.text)
                elif isinstance(item, Finish):
                    finished = True
        text = "".join(parts).strip()
        if not finished:
            raise ProviderError("the model stream ended without finishing")
        if not text:
            raise EmptyOutput("the model returned an empty summary")
        return text


def _messages(transcript: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", f"{SUMMARY_INSTRUCTION}\n\nConversation:\n{transcript}"),
        ChatMessage("user", SUMMARY_ASK),
    ]
