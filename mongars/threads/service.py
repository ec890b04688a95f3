"""Thread logic: owner scoping, keyset cursors, search snippets. Services only flush."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import User
from mongars.conversation.models import Thread, Turn
from mongars.errors import InvalidInput, NotFound
from mongars.feedback.schemas import FeedbackBrief
from mongars.feedback.service import feedback_briefs
from mongars.memory.repository import MemoryRepository
from mongars.threads.repository import ThreadKey, ThreadRepository, ThreadRow, TurnHit, TurnKey
from mongars.threads.schemas import (
    MessageOut,
    MessagePage,
    SearchPage,
    ThreadHit,
    ThreadOut,
    ThreadPage,
)

QUERY_MAX = 200
SNIPPET_CHARS = 160
_MAX_TURN_ID = 2**31 - 1  # INTEGER on PostgreSQL
_BAD_CURSOR = "malformed cursor: pass next_cursor from the previous page unchanged"


class ThreadService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = ThreadRepository(session)
        self.memories = MemoryRepository(session)

    async def create(self, user: User, title: str | None) -> ThreadOut:
        thread = await self.repo.add(uuid.uuid4().hex, user.id, title or "")
        return _thread_out(ThreadRow(thread, 0))

    async def get(self, user: User, thread_id: str) -> ThreadOut:
        thread = await self._owned(user, thread_id)
        return _thread_out(ThreadRow(thread, await self.repo.message_count(thread.id)))

    async def list_threads(self, user: User, limit: int, cursor: str | None) -> ThreadPage:
        after = _thread_key(cursor)
        rows = await self.repo.page(user.id, limit + 1, after)
        items, next_cursor = _split_threads(rows, limit)
        return ThreadPage(items=[_thread_out(r) for r in items], next_cursor=next_cursor)

    async def messages(
        self, user: User, thread_id: str, limit: int, cursor: str | None
    ) -> MessagePage:
        """The thread's turns, oldest first; superseded (regenerated-away) turns left out."""
        after = _turn_key(cursor)
        thread = await self._owned(user, thread_id)
        turns = await self.repo.turns(thread.id, limit + 1, after)
        page, more = turns[:limit], len(turns) > limit
        next_cursor = encode_cursor("m", page[-1].created_at, page[-1].id) if more else None
        feedback = await feedback_briefs(self.session, user.id, [t.id for t in page])
        return MessagePage(
            items=[_message_out(t, feedback.get(t.id)) for t in page], next_cursor=next_cursor
        )

    async def rename(self, user: User, thread_id: str, title: str) -> ThreadOut:
        """Rename; not counted as activity, so the thread keeps its place in the list."""
        thread = await self.repo.rename(await self._owned(user, thread_id), title)
        return _thread_out(ThreadRow(thread, await self.repo.message_count(thread.id)))

    async def delete(self, user: User, thread_id: str) -> None:
        """Delete the thread, its turns, and what monGARS remembered from it."""
        thread = await self._owned(user, thread_id)
        await self.memories.delete_thread(user.id, thread.id)
        await self.repo.delete(thread)

    async def search(self, user: User, q: str, limit: int, cursor: str | None) -> SearchPage:
        """Threads whose title or messages contain ``q`` (case-insensitive, literal)."""
        text = q.strip()
        if not 1 <= len(text) <= QUERY_MAX:
            raise InvalidInput(f"q must be 1 to {QUERY_MAX} characters after trimming spaces")
        if "\x00" in text:
            raise InvalidInput("q must not contain NUL characters")
        after = _thread_key(cursor)
        rows = await self.repo.search(user.id, text, limit + 1, after)
        items, next_cursor = _split_threads(rows, limit)
        hits = await self.repo.first_hits([r.thread.id for r in items if not r.title_hit], text)
        return SearchPage(
            items=[
                ThreadHit(
                    **_thread_out(r).model_dump(),
                    snippet=make_snippet(_matched_text(r, hits.get(r.thread.id)), text),
                )
                for r in items
            ],
            next_cursor=next_cursor,
        )

    async def _owned(self, user: User, thread_id: str) -> Thread:
        thread = await self.repo.owned(thread_id, user.id)
        if thread is None:  # missing and someone else's look the same
            raise NotFound(f"no thread {thread_id!r}")
        return thread


def _thread_out(row: ThreadRow) -> ThreadOut:
    t = row.thread
    return ThreadOut(
        id=t.id,
        title=t.title,
        created_at=t.created_at,
        updated_at=t.updated_at,
        message_count=row.message_count,
    )


def _message_out(t: Turn, feedback: FeedbackBrief | None = None) -> MessageOut:
    return MessageOut(
        turn_id=t.id,
        query=t.query,
        response=t.response,
        status=t.status,
        created_at=t.created_at,
        model=t.model,
        confidence=t.confidence,
        prompt_tokens=t.prompt_tokens,
        completion_tokens=t.completion_tokens,
        citations=list(t.citations or []),
        feedback=feedback,
        adapter_version=t.adapter_version,
    )


def _split_threads(rows: list[ThreadRow], limit: int) -> tuple[list[ThreadRow], str | None]:
    """Trim the one extra row fetched to learn whether another page exists."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1].thread
    return rows[:limit], encode_cursor("t", last.updated_at, last.id)


def _matched_text(row: ThreadRow, hit: TurnHit | None) -> str:
    if row.title_hit or hit is None:
        return row.thread.title
    return hit.query if hit.in_query else hit.response


def make_snippet(text: str, q: str, width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first match of ``q``."""
    match = re.search(re.escape(q), text, re.IGNORECASE)
    start, end = (match.start(), match.end()) if match else (0, 0)
    lo = max(0, start - max(0, width - (end - start)) // 2)
    hi = min(len(text), max(lo + width, end))
    lo = max(0, min(lo, hi - width))
    piece = " ".join(text[lo:hi].split())
    return f"{'…' if lo > 0 else ''}{piece}{'…' if hi < len(text) else ''}"


# Cursors: opaque to clients; urlsafe base64 of "kind|iso timestamp|id".


def encode_cursor(kind: str, at: datetime, key: str | int) -> str:
    raw = f"{kind}|{at.astimezone(UTC).isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, stamp, key = raw.split("|", 2)
        at = datetime.fromisoformat(stamp)
        if tag != kind or at.tzinfo is None or not key:
            raise ValueError(raw)
        return at.astimezone(UTC), key
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise InvalidInput(_BAD_CURSOR) from None


def _thread_key(cursor: str | None) -> ThreadKey | None:
    if cursor is None:
        return None
    at, key = decode_cursor("t", cursor)
    if len(key) > 128:
        raise InvalidInput(_BAD_CURSOR)
    return at, key


def _turn_key(cursor: str | None) -> TurnKey | None:
    if cursor is None:
        return None
    at, key = decode_cursor("m", cursor)
    if not key.isascii() or not key.isdigit() or int(key) > _MAX_TURN_ID:
        raise InvalidInput(_BAD_CURSOR)
    return at, int(key)
