"""MemoryControl: what a user (and an operator) can do with stored memories.

List, search, read, add a note, edit, forget one, forget all, export; and the
jobs over everyone's memories: retention and consolidation. Every user-facing
method takes the acting user and only ever touches that user's rows; another
user's memory is "not found". Like MemoryService, this opens its own short
units of work, so follow-up signals (the indexer's ``pending`` event) are sent
only once a change is committed.

Forgetting deletes the row. Its full-text entry goes with it (a trigger on
SQLite, the generated tsvector column on PostgreSQL), pgvector's index with the
row, and the user's memory epoch moves, so the in-process dense index and any
cache keyed on the epoch drop it on their next use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.apikeys.repository import ApiKeyRepository
from mongars.auth.models import User
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import DomainError, FeatureDisabled, InvalidInput, NotFound
from mongars.feedback.repository import FeedbackRepository
from mongars.llm.base import LLMProvider
from mongars.memory.consolidation import Consolidator, Progress
from mongars.memory.models import Memory
from mongars.memory.repository import MemoryRepository
from mongars.memory.retention import apply_retention
from mongars.memory.schemas import (
    QUERY_MAX,
    AccountExport,
    ConsolidationReport,
    ExportOut,
    ForgetAllOut,
    MemoryHitOut,
    MemoryOut,
    MemoryPage,
    RetentionReport,
    SearchOut,
)
from mongars.memory.service import MemoryService, NewMemory
from mongars.research.repository import DocumentRepository
from mongars.settings import Settings
from mongars.threads.service import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from mongars.runtime import Runtime

SEARCH_K_MAX = 100
_MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL
_BAD_CURSOR = "malformed cursor: pass next_cursor from the previous page unchanged"
_CURSOR_TAG = "mem"
_NEVER_EXPORTED = frozenset({"password_hash", "key_hash", "embedding"})

PersonaExport = Callable[[User], Awaitable[dict[str, Any]]]


class ConfirmationRequired(DomainError):
    status, code = 400, "confirmation_required"


class MemoryControl:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        service: MemoryService | None = None,
        llm: LLMProvider | None = None,
        persona_export: PersonaExport | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.service = service  # None when memory is disabled: no search or new notes
        self.llm = llm
        self.persona_export = persona_export

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> MemoryControl:
        return cls(
            runtime.sessions,
            runtime.settings,
            runtime.memory.service if runtime.memory is not None else None,
            runtime.llm,
            _persona_export(runtime),
        )

    # -- one user's memories ---------------------------------------------------------

    async def list_memories(
        self,
        user: User,
        limit: int,
        cursor: str | None,
        kind: str | None = None,
        thread_id: str | None = None,
    ) -> MemoryPage:
        """Newest first (when the remembered thing happened), keyset-paginated."""
        after = _decode(cursor) if cursor is not None else None
        async with unit_of_work(self.sessions) as session:
            rows = await MemoryRepository(session).list_page(
                user.id, limit + 1, after, kind, thread_id
            )
        page, more = rows[:limit], len(rows) > limit
        next_cursor = encode_cursor(_CURSOR_TAG, page[-1].created_at, page[-1].id) if more else None
        return MemoryPage(items=[memory_out(m) for m in page], next_cursor=next_cursor)

    async def get(self, user: User, memory_id: int) -> MemoryOut:
        async with unit_of_work(self.sessions) as session:
            return memory_out(await _owned(MemoryRepository(session), user, memory_id))

    async def search(
        self, user: User, q: str, k: int = 10, thread_id: str | None = None
    ) -> SearchOut:
        """Hybrid recall (dense + full-text + recency), exactly as a chat turn uses it."""
        service = self._require_service()
        query = q.strip()
        if not 1 <= len(query) <= QUERY_MAX:
            raise InvalidInput(f"q must be 1 to {QUERY_MAX} characters after trimming spaces")
        if "\x00" in query:
            raise InvalidInput("q must not contain NUL characters")
        if not 1 <= k <= SEARCH_K_MAX:
            raise InvalidInput(f"k must be between 1 and {SEARCH_K_MAX}")
        hits = await service.search(user.id, query, k=k, thread_id=thread_id)
        return SearchOut(
            query=query,
            items=[
                MemoryHitOut(
                    id=h.id,
                    kind=h.kind,
                    text=h.text,
                    created_at=h.created_at,
                    thread_id=h.thread_id,
                    turn_id=h.turn_id,
                    score=h.score,
                )
                for h in hits
            ],
        )

    async def add_note(self, user: User, text: str) -> MemoryOut:
        """Remember a note; embedded before this returns, so recall finds it at once."""
        service = self._require_service()
        [memory_id] = await service.add(user.id, [NewMemory(text, kind="note")], embed=True)
        return await self.get(user, memory_id)

    async def edit(self, user: User, memory_id: int, text: str) -> MemoryOut:
        """Replace the text. Full-text search sees it at once; the indexer re-embeds it."""
        async with unit_of_work(self.sessions) as session:
            repo = MemoryRepository(session)
            memory = await _owned(repo, user, memory_id)
            if memory.text == text:
                return memory_out(memory)
            out = memory_out(await repo.update_text(memory, text))
        if self.service is not None:
            self.service.pending.set()  # committed: the indexer may now embed it
        return out

    async def forget(self, user: User, memory_id: int) -> None:
        async with unit_of_work(self.sessions) as session:
            repo = MemoryRepository(session)
            await _owned(repo, user, memory_id)
            await repo.delete(user.id, [memory_id])

    async def forget_all(self, user: User, confirm: bool) -> ForgetAllOut:
        if not confirm:
            raise ConfirmationRequired(
                "forgetting all memories cannot be undone: repeat with ?confirm=true"
            )
        async with unit_of_work(self.sessions) as session:
            deleted = await MemoryRepository(session).delete_all(user.id)
        return ForgetAllOut(deleted=deleted)

    async def export(self, user: User) -> ExportOut:
        """Everything stored about the user: account, threads, turns, memories, API keys,
        the persona profile, own documents (their text), knowledge gaps and feedback on
        answers. Never a password hash, a key hash or an embedding."""
        async with unit_of_work(self.sessions) as session:
            threads, turns, memories = await MemoryRepository(session).export_rows(user.id)
            keys = await ApiKeyRepository(session).list_for_user(user.id)
            collections, documents, chunks, gaps = await DocumentRepository(session).export_rows(
                user.id
            )
            feedback = await FeedbackRepository(session).for_user(user.id)
            out = ExportOut(
                exported_at=utcnow(),
                account=AccountExport(
                    username=user.username,
                    created_at=user.created_at,
                    is_admin=user.is_admin,
                    is_active=user.is_active,
                ),
                threads=[_columns(t) for t in threads],
                turns=[_columns(t) for t in turns],
                memories=[_columns(m, exclude={"embedding"}) for m in memories],
                api_keys=[_columns(k, exclude={"key_hash"}) for k in keys],
                persona=None,
                collections=[_columns(c) for c in collections],
                documents=[_columns(d) for d in documents],
                document_chunks=[_columns(c, exclude={"embedding"}) for c in chunks],
                knowledge_gaps=[_columns(g) for g in gaps],
                feedback=[_columns(f) for f in feedback],
            )
        if self.persona_export is not None:
            out.persona = await self.persona_export(user)
        return out

    # -- jobs over every user ----------------------------------------------------------

    async def apply_retention(self, now: datetime | None = None) -> RetentionReport:
        return await apply_retention(self.sessions, self.settings.memory.retention_days, now)

    async def consolidate(
        self, user_id: int | None = None, progress: Progress | None = None
    ) -> ConsolidationReport:
        service = self._require_service()
        consolidator = Consolidator(self.sessions, service.embedder, self.llm, self.settings)
        return await consolidator.run(user_id, progress)

    def _require_service(self) -> MemoryService:
        if self.service is None:
            raise FeatureDisabled("memory is off on this server (MONGARS_MEMORY__ENABLED=true)")
        return self.service


def memory_out(m: Memory) -> MemoryOut:
    return MemoryOut(
        id=m.id,
        kind=m.kind,
        text=m.text,
        created_at=m.created_at,
        updated_at=m.updated_at,
        thread_id=m.thread_id,
        turn_id=m.turn_id,
        subject=m.subject,
        valid_from=m.valid_from,
        invalid_at=m.invalid_at,
        source_ids=list(m.source_ids or []),
        indexed=m.embedded,
    )


async def _owned(repo: MemoryRepository, user: User, memory_id: int) -> Memory:
    memory = await repo.get(user.id, memory_id)
    if memory is None:  # missing and someone else's look the same
        raise NotFound(f"no memory {memory_id}")
    return memory


def _decode(cursor: str) -> tuple[datetime, int]:
    at, key = decode_cursor(_CURSOR_TAG, cursor)
    if not key.isascii() or not key.isdigit() or int(key) > _MAX_ID:
        raise InvalidInput(_BAD_CURSOR)
    return at, int(key)


def _columns(row: object, exclude: set[str] | None = None) -> dict[str, Any]:
    """Every mapped column of ``row`` (so columns added later are exported too),
    except secrets and vectors."""
    skip = _NEVER_EXPORTED | (exclude or set())
    mapper = inspect(type(row))
    return {a.key: getattr(row, a.key) for a in mapper.column_attrs if a.key not in skip}


def _persona_export(runtime: Runtime) -> PersonaExport | None:
    """The persona package's export, if it provides one (imported lazily: optional)."""
    try:
        from mongars.persona.contributor import persona_service
    except ImportError:  # persona feature not installed in this build: export without it
        return None
    service = persona_service(runtime)
    export = getattr(service, "export", None)
    return export if callable(export) else None
