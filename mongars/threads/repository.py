"""All SQL for the Threads API (tables live in mongars.conversation.models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, delete, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.conversation.models import Thread, Turn
from mongars.db.base import utcnow

SUPERSEDED = "superseded"

# A keyset position: the sort timestamp and the row id of the last item seen.
ThreadKey = tuple[datetime, str]
TurnKey = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread: Thread
    message_count: int
    title_hit: bool = False


@dataclass(frozen=True, slots=True)
class TurnHit:
    """The first turn of a thread that matched a search, and which side matched."""

    query: str
    response: str
    in_query: bool


def _message_count() -> ColumnElement[int]:
    return (
        select(func.count(Turn.id))
        .where(Turn.thread_id == Thread.id, Turn.status != SUPERSEDED)
        .correlate(Thread)
        .scalar_subquery()
        .label("message_count")
    )


def _after_thread(key: ThreadKey | None) -> ColumnElement[bool]:
    """Rows after ``key`` in (updated_at desc, id desc) order."""
    if key is None:
        return true()
    at, thread_id = key
    return or_(
        Thread.updated_at < at,
        and_(Thread.updated_at == at, Thread.id < thread_id),
    )


def _contains(column: SQLColumnExpression[str], text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; % _ and the escape character match literally."""
    return column.icontains(text, autoescape=True)


def _turn_matches(text: str) -> ColumnElement[bool]:
    return or_(_contains(Turn.query, text), _contains(Turn.response, text))


class ThreadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, thread_id: str, user_id: int, title: str) -> Thread:
        now = utcnow()
        thread = Thread(id=thread_id, user_id=user_id, title=title, created_at=now, updated_at=now)
        self.session.add(thread)
        await self.session.flush()
        return thread

    async def owned(self, thread_id: str, user_id: int) -> Thread | None:
        """The thread if it exists and belongs to ``user_id``."""
        result = await self.session.execute(
            select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
        )
        return result.scalar_one_or_none()

    async def message_count(self, thread_id: str) -> int:
        count = await self.session.scalar(
            select(func.count(Turn.id)).where(
                Turn.thread_id == thread_id, Turn.status != SUPERSEDED
            )
        )
        return int(count or 0)

    async def page(self, user_id: int, limit: int, after: ThreadKey | None) -> list[ThreadRow]:
        """The user's threads, latest activity first, starting after ``after``."""
        result = await self.session.execute(
            select(Thread, _message_count())
            .where(Thread.user_id == user_id, _after_thread(after))
            .order_by(Thread.updated_at.desc(), Thread.id.desc())
            .limit(limit)
        )
        return [ThreadRow(thread, int(count)) for thread, count in result]

    async def search(
        self, user_id: int, text: str, limit: int, after: ThreadKey | None
    ) -> list[ThreadRow]:
        """Threads whose title or any non-superseded turn contains ``text``."""
        in_turns = (
            select(Turn.id)
            .where(Turn.thread_id == Thread.id, Turn.status != SUPERSEDED, _turn_matches(text))
            .correlate(Thread)
            .exists()
        )
        title_hit = _contains(Thread.title, text)
        result = await self.session.execute(
            select(Thread, _message_count(), title_hit.label("title_hit"))
            .where(Thread.user_id == user_id, or_(title_hit, in_turns), _after_thread(after))
            .order_by(Thread.updated_at.desc(), Thread.id.desc())
            .limit(limit)
        )
        return [ThreadRow(t, int(count), bool(hit)) for t, count, hit in result]

    async def first_hits(self, thread_ids: Sequence[str], text: str) -> dict[str, TurnHit]:
        """For each thread, its oldest non-superseded turn containing ``text``."""
        if not thread_ids:
            return {}
        rank = (
            func.row_number()
            .over(partition_by=Turn.thread_id, order_by=(Turn.created_at, Turn.id))
            .label("rank")
        )
        ranked = (
            select(
                Turn.thread_id,
                Turn.query,
                Turn.response,
                _contains(Turn.query, text).label("in_query"),
                rank,
            )
            .where(Turn.thread_id.in_(thread_ids), Turn.status != SUPERSEDED, _turn_matches(text))
            .subquery()
        )
        result = await self.session.execute(
            select(ranked.c.thread_id, ranked.c.query, ranked.c.response, ranked.c.in_query).where(
                ranked.c.rank == 1
            )
        )
        return {
            thread_id: TurnHit(query, response, bool(in_query))
            for thread_id, query, response, in_query in result
        }

    async def turns(self, thread_id: str, limit: int, after: TurnKey | None) -> list[Turn]:
        """The thread's non-superseded turns, oldest first, starting after ``after``."""
        query = select(Turn).where(Turn.thread_id == thread_id, Turn.status != SUPERSEDED)
        if after is not None:
            at, turn_id = after
            query = query.where(
                or_(Turn.created_at > at, and_(Turn.created_at == at, Turn.id > turn_id))
            )
        result = await self.session.execute(query.order_by(Turn.created_at, Turn.id).limit(limit))
        return list(result.scalars())

    async def rename(self, thread: Thread, title: str) -> Thread:
        thread.title = title
        await self.session.flush()
        return thread

    async def delete(self, thread: Thread) -> None:
        """Delete the thread and its turns (explicitly, not relying on FK cascades)."""
        await self.session.execute(delete(Turn).where(Turn.thread_id == thread.id))
        await self.session.execute(
            delete(Thread).where(Thread.id == thread.id, Thread.user_id == thread.user_id)
        )
        await self.session.flush()
