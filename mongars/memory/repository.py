"""All SQL for memories, on SQLite (FTS5 + blobs) and PostgreSQL (tsvector + pgvector)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import (
    Float,
    Integer,
    Table,
    and_,
    bindparam,
    column,
    delete,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

from mongars.conversation.models import Thread, Turn
from mongars.db.base import utcnow
from mongars.memory.models import EMBEDDING_DIM, Embedding, ForgottenTurn, Memory, MemoryEpoch

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORD_TEXT = """a an and are as at be but by did do does for from had has have he her him
his how i if in into is it its me my of on or our she so that the their them then there they
this to was we were what when where which who whom why will with would you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def query_terms(query: str, limit: int = 24) -> list[str]:
    """Distinct lower-case words of a query, stopwords out (at most ``limit``)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS and len(seen) < limit:
            seen.setdefault(word, None)
    return list(seen)


class VectorRows(NamedTuple):
    """Embedded memories for the in-process index: ``valid`` is False for facts that
    no longer hold; ``threads`` holds the thread of turns (None for other kinds)."""

    ids: np.ndarray
    valid: np.ndarray
    times: np.ndarray  # created_at, unix seconds
    threads: list[str | None]
    matrix: np.ndarray


class MemoryRow(NamedTuple):
    """What a search hit needs of a memory (no embedding, no JSON columns)."""

    id: int
    kind: str
    text: str
    created_at: datetime
    turn_id: int | None
    thread_id: str | None


_ROW_COLUMNS = (
    Memory.id,
    Memory.kind,
    Memory.text,
    Memory.created_at,
    Memory.turn_id,
    Memory.thread_id,
)


class MemoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    # -- writes (each bumps the user's epoch) -----------------------------------

    async def bump_epoch(self, user_id: int, reset: bool = False) -> None:
        values: dict[str, Any] = {"epoch": MemoryEpoch.epoch + 1}
        if reset:
            values["reset_epoch"] = MemoryEpoch.reset_epoch + 1
        updated = await self.session.execute(
            update(MemoryEpoch).where(MemoryEpoch.user_id == user_id).values(**values)
        )
        if getattr(updated, "rowcount", 0) == 0:
            self.session.add(MemoryEpoch(user_id=user_id, epoch=1, reset_epoch=int(reset)))
        await self.session.flush()

    async def epochs(self, user_id: int) -> tuple[int, int]:
        row = (
            await self.session.execute(
                select(MemoryEpoch.epoch, MemoryEpoch.reset_epoch).where(
                    MemoryEpoch.user_id == user_id
                )
            )
        ).first()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def add(self, memories: Sequence[Memory]) -> list[Memory]:
        self.session.add_all(memories)
        await self.session.flush()
        for user_id in {m.user_id for m in memories}:
            await self.bump_epoch(user_id)
        return list(memories)

    async def set_embeddings(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        table = Memory.__table__
        assert isinstance(table, Table)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(embedding=bindparam("vec", type_=Embedding()), embedded=True)
        )
        rows = [{"mid": int(i), "vec": v} for i, v in zip(ids, vectors, strict=True)]
        if rows:
            await self.session.execute(stmt, rows)
            users = await self.session.scalars(
                select(Memory.user_id).where(Memory.id.in_(ids)).distinct()
            )
            for user_id in list(users):
                await self.bump_epoch(user_id)

    async def update_text(self, memory: Memory, new_text: str) -> Memory:
        memory.text = new_text
        memory.updated_at = utcnow()
        memory.embedded = False
        memory.embedding = None
        await self.session.flush()
        await self.bump_epoch(memory.user_id, reset=True)
        return memory

    async def delete(self, user_id: int, ids: Sequence[int]) -> int:
        await self._tombstone(user_id, Memory.id.in_(ids))
        result = await self.session.execute(
            delete(Memory).where(Memory.user_id == user_id, Memory.id.in_(ids))
        )
        await self.bump_epoch(user_id, reset=True)
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_all(self, user_id: int) -> int:
        await self._tombstone(user_id, true())
        result = await self.session.execute(delete(Memory).where(Memory.user_id == user_id))
        await self.bump_epoch(user_id, reset=True)
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_thread(self, user_id: int, thread_id: str) -> int:
        """Forget the memories taken from one conversation (its turns and summary)."""
        ids = list(
            await self.session.scalars(
                select(Memory.id).where(Memory.user_id == user_id, Memory.thread_id == thread_id)
            )
        )
        return await self.delete(user_id, ids) if ids else 0

    async def _tombstone(self, user_id: int, which: Any) -> None:
        """Remember which turns' memories are forgotten, so they are not rebuilt."""
        turn_ids = await self.session.scalars(
            select(Memory.turn_id).where(
                Memory.user_id == user_id, Memory.turn_id.is_not(None), which
            )
        )
        existing = set(
            await self.session.scalars(
                select(ForgottenTurn.turn_id).where(ForgottenTurn.user_id == user_id)
            )
        )
        for turn_id in set(turn_ids) - existing:
            self.session.add(ForgottenTurn(turn_id=turn_id, user_id=user_id))
        await self.session.flush()

    # -- reads --------------------------------------------------------------------

    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        memory = await self.session.get(Memory, memory_id)
        return memory if memory is not None and memory.user_id == user_id else None

    async def by_ids(self, user_id: int, ids: Sequence[int]) -> list[Memory]:
        if not ids:
            return []
        rows = await self.session.scalars(
            select(Memory).where(Memory.user_id == user_id, Memory.id.in_(ids))
        )
        return list(rows)

    async def pending(self, limit: int) -> list[Memory]:
        """Memories still without an embedding (any user), oldest first."""
        rows = await self.session.scalars(
            select(Memory).where(Memory.embedded.is_(False)).order_by(Memory.id).limit(limit)
        )
        return list(rows)

    async def unindexed_turns(self, limit: int) -> list[Turn]:
        """Completed turns that have no memory yet (e.g. a crash right after answering)."""
        rows = await self.session.scalars(
            select(Turn)
            .outerjoin(Memory, Memory.turn_id == Turn.id)
            .outerjoin(ForgottenTurn, ForgottenTurn.turn_id == Turn.id)
            .where(Memory.id.is_(None), ForgottenTurn.turn_id.is_(None), Turn.status == "completed")
            .order_by(Turn.id)
            .limit(limit)
        )
        return list(rows)

    async def vectors(self, user_id: int, after_id: int = 0) -> VectorRows:
        """A user's embedded memories with id > after_id, in id order."""
        rows = (
            await self.session.execute(
                select(
                    Memory.id,
                    Memory.invalid_at.is_(None),
                    Memory.created_at,
                    Memory.kind,
                    Memory.thread_id,
                    Memory.embedding,
                )
                .where(
                    Memory.user_id == user_id,
                    Memory.embedded.is_(True),
                    Memory.id > after_id,
                )
                .order_by(Memory.id)
            )
        ).all()
        n = len(rows)
        return VectorRows(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            valid=np.fromiter((bool(r[1]) for r in rows), dtype=bool, count=n),
            times=np.fromiter((r[2].timestamp() for r in rows), dtype=np.float64, count=n),
            threads=[r[4] if r[3] == "turn" else None for r in rows],
            matrix=(
                np.vstack([r[5] for r in rows]).astype(np.float32, copy=False)
                if rows
                else np.empty((0, EMBEDDING_DIM), np.float32)
            ),
        )

    async def embedded_count(self, user_id: int) -> int:
        """How many of the user's memories have an embedding (an index-only count)."""
        value = await self.session.scalar(
            select(func.count())
            .select_from(Memory)
            .where(Memory.user_id == user_id, Memory.embedded.is_(True))
        )
        return int(value or 0)

    async def dense_search(self, user_id: int, vector: np.ndarray, k: int) -> list[int]:
        """PostgreSQL only: nearest memories by cosine distance (pgvector HNSW)."""
        return [i for i, _ in await self.dense_scored(user_id, vector, k)]

    async def dense_scored(
        self, user_id: int, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """PostgreSQL only: (id, cosine similarity) of the nearest memories, best first."""
        await self.session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        await self.session.execute(text("SET LOCAL hnsw.ef_search = 100"))
        distance = Memory.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        rows = await self.session.execute(
            select(Memory.id, distance.label("distance"))
            .where(
                Memory.user_id == user_id, Memory.embedded.is_(True), Memory.invalid_at.is_(None)
            )
            .order_by(distance)
            .limit(k)
        )
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    async def cosines(
        self, user_id: int, ids: Sequence[int], vector: np.ndarray
    ) -> dict[int, float]:
        """PostgreSQL only: cosine similarity of these memories to ``vector``."""
        if not ids:
            return {}
        distance = Memory.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        # by primary key only, owner checked here (see hit_rows)
        rows = await self.session.execute(
            select(Memory.id, Memory.user_id, distance).where(
                Memory.id.in_(ids), Memory.embedded.is_(True)
            )
        )
        return {int(r[0]): 1.0 - float(r[2]) for r in rows if r[1] == user_id}

    async def text_search(self, user_id: int, query: str, k: int) -> list[int]:
        """Full-text ranked ids (BM25 via FTS5 on SQLite, ts_rank_cd on PostgreSQL)."""
        return [i for i, _ in await self.text_scored(user_id, query, k)]

    async def text_scored(
        self,
        user_id: int,
        query: str,
        k: int,
        terms: Sequence[str] | None = None,
        require_all: bool = False,
    ) -> list[tuple[int, float]]:
        """(id, relevance) best first; relevance is BM25 (FTS5) on SQLite and ts_rank_cd
        on PostgreSQL, higher is better. ``terms``: the words to match (default: the
        query's words, stopwords out), any of them or with ``require_all`` all of them."""
        terms = query_terms(query) if terms is None else list(terms)
        if not terms:
            return []
        pg_join, fts_join = (" & ", " AND ") if require_all else (" | ", " OR ")
        if self.dialect == "postgresql":
            rows = await self.session.execute(
                text(
                    "SELECT id, ts_rank_cd(search_vector, query, 1) AS r "
                    "FROM memories, to_tsquery('english', :q) query "
                    "WHERE user_id = :uid AND invalid_at IS NULL AND search_vector @@ query "
                    "ORDER BY r DESC, id DESC LIMIT :k"
                ),
                {"q": _pg_tsquery(terms, pg_join), "uid": user_id, "k": k},
            )
            return [(int(r[0]), float(r[1])) for r in rows]
        # Rank inside FTS5 first, then drop facts no longer valid (rare): joining every
        # match to its row before ranking costs more than the ranking itself.
        match = f"owner:u{user_id} AND ({fts_join.join(_fts_quote(t) for t in terms)})"
        rows = await self.session.execute(
            text(
                "SELECT f.id, f.r FROM (SELECT rowid AS id, -bm25(memories_fts, 1.0, 0.0) AS r "
                "FROM memories_fts WHERE memories_fts MATCH :match "
                "ORDER BY bm25(memories_fts, 1.0, 0.0) LIMIT :k) f "
                "JOIN memories m ON m.id = f.id WHERE m.invalid_at IS NULL ORDER BY f.r DESC"
            ),
            {"match": match, "k": k},
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def term_counts(
        self, terms: Sequence[str], cap: int, after_id: int = 0
    ) -> dict[str, int]:
        """About how many memories (all users) contain each term, counting at most
        ``cap``. SQLite counts FTS5 matches among memories with id > ``after_id`` (a
        recent sample, cheap to count); PostgreSQL reads the lexeme frequencies
        ANALYZE keeps for the tsvector column (a term missing from them is rare)."""
        if self.dialect == "postgresql":
            return await self._pg_term_counts(terms, cap)
        counts: dict[str, int] = {}
        for term in terms:
            sql = (
                "SELECT count(*) FROM (SELECT rowid FROM memories_fts "
                "WHERE memories_fts MATCH :q AND rowid > :after LIMIT :cap)"
            )
            params = {"q": f"text:{_fts_quote(term)}", "cap": cap, "after": after_id}
            counts[term] = int(await self.session.scalar(text(sql), params) or 0)
        return counts

    async def _pg_term_counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        rows = await self.session.execute(
            text(
                "SELECT q.term, coalesce(max(e.freq), 0) * max(c.reltuples) "
                "FROM unnest(CAST(:terms AS text[])) AS q(term) "
                "CROSS JOIN pg_class c "
                "LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
                "AND s.tablename = 'memories' AND s.attname = 'search_vector' "
                "LEFT JOIN LATERAL unnest(CAST(CAST(s.most_common_elems AS text) AS text[]), "
                "s.most_common_elem_freqs) AS e(lexeme, freq) "
                "ON e.lexeme = ANY(tsvector_to_array(to_tsvector('english', q.term))) "
                "WHERE c.oid = CAST('memories' AS regclass) GROUP BY q.term"
            ),
            {"terms": list(terms)},
        )
        return {str(r[0]): min(cap, int(max(0.0, float(r[1] or 0)))) for r in rows}

    async def max_id(self) -> int:
        """The newest memory id: about how many memories there are (cheap)."""
        return int(await self.session.scalar(select(func.max(Memory.id))) or 0)

    async def hit_rows(self, user_id: int, ids: Sequence[int]) -> list[MemoryRow]:
        """The user's valid memories among ``ids`` (the columns a search hit needs)."""
        if not ids:
            return []
        # By primary key only, owner checked here: given the owner too, SQLite's planner
        # walks the owner's index instead (all of a large user's rows).
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at).where(Memory.id.in_(ids))
        )
        return [MemoryRow(*r[:-2]) for r in rows if r.user_id == user_id and r.invalid_at is None]

    async def neighbours(
        self, user_id: int, sources: Sequence[tuple[int, str]], before: int, after: int
    ) -> tuple[list[tuple[int, int, int]], list[MemoryRow]]:
        """Turns up to ``before`` earlier and ``after`` later than each source in its
        thread: links (source id, neighbour id, offset; -1 is the turn just before) and
        the neighbours' rows."""
        if not sources or (before <= 0 and after <= 0):
            return [], []
        columns = ", ".join(c.name for c in _ROW_COLUMNS)
        parts: list[str] = []
        params: dict[str, Any] = {"uid": user_id, "before": before, "after": after}
        for n, (source, thread) in enumerate(sources):
            params[f"s{n}"], params[f"t{n}"] = source, thread
            for op, order, limit in ((">", "ASC", "after"), ("<", "DESC", "before")):
                parts.append(  # only fixed keywords and column names are interpolated
                    f"SELECT * FROM (SELECT CAST(:s{n} AS INTEGER) AS src, {columns} "  # noqa: S608
                    f"FROM memories WHERE user_id = :uid AND thread_id = :t{n} "
                    f"AND kind = 'turn' AND invalid_at IS NULL AND id {op} :s{n} "
                    f"ORDER BY id {order} LIMIT :{limit}) AS q{n}{limit[0]}"
                )
        result = await self.session.execute(
            text(" UNION ALL ".join(parts)).columns(
                column("src", Integer), *(column(c.name, c.type) for c in _ROW_COLUMNS)
            ),
            params,
        )
        found: dict[int, list[int]] = {}
        rows: dict[int, MemoryRow] = {}
        for r in result:
            found.setdefault(int(r[0]), []).append(int(r[1]))
            rows[int(r[1])] = MemoryRow(*r[1:])
        links: list[tuple[int, int, int]] = []
        for source, ids in found.items():
            later = sorted(i for i in ids if i > source)
            earlier = sorted((i for i in ids if i < source), reverse=True)
            links += [(source, i, n) for n, i in enumerate(later, start=1)]
            links += [(source, i, -n) for n, i in enumerate(earlier, start=1)]
        return links, list(rows.values())

    # -- facts ----------------------------------------------------------------------

    async def valid_facts(self, user_id: int, subject: str) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory).where(
                Memory.user_id == user_id,
                Memory.kind == "fact",
                Memory.subject == subject,
                Memory.invalid_at.is_(None),
            )
        )
        return list(rows)

    async def set_facts_status(self, memory_id: int, status: str, error: str | None) -> None:
        await self.session.execute(
            update(Memory)
            .where(Memory.id == memory_id)
            .values(facts_status=status, facts_error=error)
        )

    async def facts_pending(self, limit: int) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory).where(Memory.facts_status == "pending").order_by(Memory.id).limit(limit)
        )
        return list(rows)

    async def facts(self, user_id: int, include_past: bool, limit: int) -> list[Memory]:
        query = select(Memory).where(Memory.user_id == user_id, Memory.kind == "fact")
        if not include_past:
            query = query.where(Memory.invalid_at.is_(None))
        rows = await self.session.scalars(query.order_by(Memory.id.desc()).limit(limit))
        return list(rows)

    async def facts_failed(self, user_id: int, limit: int) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.user_id == user_id, Memory.facts_status == "failed")
            .order_by(Memory.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def page(
        self, user_id: int, limit: int, before_id: int | None, kind: str | None
    ) -> list[Memory]:
        query = select(Memory).where(Memory.user_id == user_id)
        if before_id is not None:
            query = query.where(Memory.id < before_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
        rows = await self.session.scalars(query.order_by(Memory.id.desc()).limit(limit))
        return list(rows)

    async def count(self, user_id: int) -> int:
        value = await self.session.scalar(
            select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
        )
        return int(value or 0)

    async def older_than(self, kind: str, cutoff: datetime) -> list[tuple[int, int]]:
        rows = await self.session.execute(
            select(Memory.id, Memory.user_id).where(Memory.kind == kind, Memory.created_at < cutoff)
        )
        return [(r[0], r[1]) for r in rows]

    # -- user control, retention, consolidation (used by mongars.memory.control) ------

    async def list_page(
        self,
        user_id: int,
        limit: int,
        after: tuple[datetime, int] | None,
        kind: str | None = None,
        thread_id: str | None = None,
    ) -> list[Memory]:
        """The user's memories, newest first (created_at, then id), after a keyset position."""
        query = select(Memory).where(Memory.user_id == user_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
        if thread_id is not None:
            query = query.where(Memory.thread_id == thread_id)
        if after is not None:
            at, memory_id = after
            query = query.where(
                or_(Memory.created_at < at, and_(Memory.created_at == at, Memory.id < memory_id))
            )
        rows = await self.session.scalars(
            query.order_by(Memory.created_at.desc(), Memory.id.desc()).limit(limit)
        )
        return list(rows)

    async def user_ids_with_memories(self) -> list[int]:
        query = select(Memory.user_id).distinct().order_by(Memory.user_id)
        rows = await self.session.scalars(query)
        return list(rows)

    async def dedupe_candidates(self, user_id: int) -> list[tuple[int, str, np.ndarray]]:
        """(id, kind, embedding) of the user's embedded, valid memories, newest first."""
        rows = await self.session.execute(
            select(Memory.id, Memory.kind, Memory.embedding)
            .where(
                Memory.user_id == user_id, Memory.embedded.is_(True), Memory.invalid_at.is_(None)
            )
            .order_by(Memory.created_at.desc(), Memory.id.desc())
        )
        return [(r[0], r[1], r[2]) for r in rows if r[2] is not None]

    async def merge(self, user_id: int, keeper_id: int, merged_ids: Sequence[int]) -> int:
        """Fold ``merged_ids`` into ``keeper_id``: their ids (and their own sources) join
        the keeper's ``source_ids``, then they are deleted. Returns how many went."""
        rows = {m.id: m for m in await self.by_ids(user_id, [keeper_id, *merged_ids])}
        keeper = rows.get(keeper_id)
        # a memory edited since it was compared is no longer embedded: left alone
        gone = [rows[i] for i in merged_ids if i in rows and rows[i].embedded]
        if keeper is None or not keeper.embedded or not gone:
            return 0
        sources = set(keeper.source_ids or [])
        for m in gone:
            sources.add(m.id)
            sources.update(m.source_ids or [])
        keeper.source_ids = sorted(sources)
        keeper.updated_at = utcnow()
        await self.session.flush()
        return await self.delete(user_id, [m.id for m in gone])

    async def threads_to_summarize(
        self, cutoff: datetime, min_turns: int, user_id: int | None
    ) -> list[tuple[str, int]]:
        """(thread id, user id) of threads idle since before ``cutoff`` with at least
        ``min_turns`` turn memories and no summary covering their last activity."""
        summary = aliased(Memory)
        covered = (
            select(summary.id)
            .where(
                summary.kind == "summary",
                summary.thread_id == Thread.id,
                summary.user_id == Thread.user_id,
                summary.created_at >= Thread.updated_at,
            )
            .correlate(Thread)
            .exists()
        )
        query = (
            select(Thread.id, Thread.user_id)
            .join(
                Memory,
                and_(
                    Memory.thread_id == Thread.id,
                    Memory.user_id == Thread.user_id,
                    Memory.kind == "turn",
                ),
            )
            .where(Thread.updated_at < cutoff, ~covered)
            .group_by(Thread.id, Thread.user_id, Thread.updated_at)
            .having(func.count(Memory.id) >= min_turns)
            .order_by(Thread.updated_at, Thread.id)
        )
        if user_id is not None:
            query = query.where(Thread.user_id == user_id)
        return [(r[0], r[1]) for r in await self.session.execute(query)]

    async def thread_for_summary(
        self, user_id: int, thread_id: str
    ) -> tuple[Thread | None, list[Memory]]:
        """The thread and its turn memories, oldest first."""
        thread = await self.session.scalar(
            select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
        )
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.user_id == user_id, Memory.thread_id == thread_id, Memory.kind == "turn")
            .order_by(Memory.created_at, Memory.id)
        )
        return thread, list(rows)

    async def replace_summary(self, summary: Memory) -> None:
        """Store a thread's summary memory in place of any older one."""
        old = list(
            await self.session.scalars(
                select(Memory.id).where(
                    Memory.user_id == summary.user_id,
                    Memory.kind == "summary",
                    Memory.thread_id == summary.thread_id,
                )
            )
        )
        if old:
            await self.delete(summary.user_id, old)
        await self.add([summary])

    async def export_rows(self, user_id: int) -> tuple[list[Thread], list[Turn], list[Memory]]:
        """Every thread, turn and memory of the user (embeddings not loaded), oldest first."""
        threads = await self.session.scalars(
            select(Thread).where(Thread.user_id == user_id).order_by(Thread.created_at, Thread.id)
        )
        turns = await self.session.scalars(
            select(Turn).where(Turn.user_id == user_id).order_by(Turn.created_at, Turn.id)
        )
        memories = await self.session.scalars(
            select(Memory)
            .options(defer(Memory.embedding))
            .where(Memory.user_id == user_id)
            .order_by(Memory.id)
        )
        return list(threads), list(turns), list(memories)


def _fts_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _pg_quote(term: str) -> str:
    return "'" + term.replace("'", "''").replace("\\", "") + "'"


def _pg_tsquery(terms: Sequence[str], join: str = " | ") -> str:
    return join.join(f"{_pg_quote(t)}:*" if len(t) > 3 else _pg_quote(t) for t in terms)
