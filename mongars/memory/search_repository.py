"""Search reads: nearest vectors, the in-process index's rows, hit rows and
neighbour turns, on SQLite (blobs) and PostgreSQL (pgvector); the full-text reads
come from text_repository.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import (
    REAL,
    ColumnElement,
    Float,
    Integer,
    Select,
    any_,
    bindparam,
    cast,
    column,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from mongars.memory.models import EMBEDDING_DIM, Embedding, Memory
from mongars.memory.text_repository import TextRepository


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


def _pg_neighbours(columns: str) -> str:
    """PostgreSQL: the turns around each source in one statement whatever the number
    of sources (a fixed text, so asyncpg reuses its prepared plan)."""
    side = (
        "(SELECT {columns} FROM memories WHERE user_id = :uid AND thread_id = s.thread "
        "AND kind = 'turn' AND invalid_at IS NULL AND id {op} s.src "
        "ORDER BY id {order} LIMIT :{limit})"
    )
    later = side.format(columns=columns, op=">", order="ASC", limit="after")
    earlier = side.format(columns=columns, op="<", order="DESC", limit="before")
    return (
        "SELECT s.src, m.* FROM unnest(CAST(:srcs AS integer[]), "  # noqa: S608 (constants)
        "CAST(:threads AS text[])) AS s(src, thread) "
        f"CROSS JOIN LATERAL ({later} UNION ALL {earlier}) AS m"
    )


def _floats(vector: np.ndarray) -> list[float]:
    """PostgreSQL: a query vector as a float4[] parameter, cast to vector in SQL:
    asyncpg sends it in binary, where pgvector's text form of 384 floats takes
    ~0.15 ms of formatting per statement."""
    return np.asarray(vector, dtype=np.float32).tolist()  # type: ignore[no-any-return]


class SearchRepository(TextRepository):
    """Search reads (see the module docstring)."""

    def _among(self, ids: Sequence[int]) -> ColumnElement[bool]:
        """``Memory.id`` is one of ``ids``: on PostgreSQL as ``= ANY(array)``, one
        statement whatever the count (asyncpg then reuses its prepared plan)."""
        if self.dialect == "postgresql":
            return Memory.id == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
        return Memory.id.in_(ids)

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

    def _distance(self, vector: np.ndarray) -> ColumnElement[float]:
        """PostgreSQL: cosine distance of the embedding to ``vector``."""
        return Memory.embedding.op("<=>", return_type=Float())(
            cast(bindparam("q", _floats(vector), type_=ARRAY(REAL)), Embedding())
        )

    def _nearest(self, user_id: int, vector: np.ndarray, k: int, *columns: Any) -> Select[Any]:
        """PostgreSQL: the user's ``k`` valid memories nearest to ``vector`` (pgvector
        HNSW, scan settings per connection: mongars.db.engine), ``columns`` and the
        cosine distance last."""
        distance = self._distance(vector)
        return (
            select(*columns, distance.label("distance"))
            .where(
                Memory.user_id == user_id, Memory.embedded.is_(True), Memory.invalid_at.is_(None)
            )
            .order_by(distance)
            .limit(k)
        )

    async def dense_scored(
        self, user_id: int, vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """PostgreSQL only: (id, cosine similarity) of the nearest memories, best first."""
        rows = await self.session.execute(self._nearest(user_id, vector, k, Memory.id))
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    async def dense_rows(
        self, user_id: int, vector: np.ndarray, k: int
    ) -> list[tuple[MemoryRow, float]]:
        """PostgreSQL only: ``dense_scored`` with the rows (read by the scan anyway)."""
        rows = await self.session.execute(self._nearest(user_id, vector, k, *_ROW_COLUMNS))
        return [(MemoryRow(*r[:-1]), 1.0 - float(r[-1])) for r in rows]

    async def hit_rows(self, user_id: int, ids: Sequence[int]) -> list[MemoryRow]:
        """The user's valid memories among ``ids`` (the columns a search hit needs)."""
        if not ids:
            return []
        # By primary key only, owner checked here: given the owner too, SQLite's planner
        # walks the owner's index instead (all of a large user's rows).
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at).where(self._among(ids))
        )
        return [MemoryRow(*r[:-2]) for r in rows if r.user_id == user_id and r.invalid_at is None]

    async def scored_rows(
        self, user_id: int, ids: Sequence[int], vector: np.ndarray
    ) -> list[tuple[MemoryRow, float]]:
        """PostgreSQL only: ``hit_rows`` with each memory's cosine similarity to
        ``vector`` (0 when not embedded yet), in one round trip."""
        if not ids:
            return []
        distance = self._distance(vector)
        rows = await self.session.execute(
            select(*_ROW_COLUMNS, Memory.user_id, Memory.invalid_at, distance).where(
                self._among(ids)
            )
        )
        return [
            (MemoryRow(*r[:-3]), 1.0 - float(r[-1]) if r[-1] is not None else 0.0)
            for r in rows
            if r.user_id == user_id and r.invalid_at is None
        ]

    async def neighbours(
        self,
        user_id: int,
        sources: Sequence[tuple[int, str]],
        before: int,
        after: int,
        vector: np.ndarray | None = None,
    ) -> tuple[list[tuple[int, int, int]], list[MemoryRow], dict[int, float]]:
        """Turns up to ``before`` earlier and ``after`` later than each source in its
        thread: links (source id, neighbour id, offset; -1 is the turn just before),
        the neighbours' rows and (PostgreSQL, given ``vector``) their cosines."""
        if not sources or (before <= 0 and after <= 0):
            return [], [], {}
        columns = ", ".join(c.name for c in _ROW_COLUMNS)
        if vector is not None:
            columns += ", embedding <=> CAST(:q AS vector) AS distance"
        params: dict[str, Any] = {"uid": user_id, "before": before, "after": after}
        if vector is not None:
            params["q"] = _floats(vector)
        if self.dialect == "postgresql":
            sql = text(_pg_neighbours(columns))
            params["srcs"] = [source for source, _ in sources]
            params["threads"] = [thread for _, thread in sources]
        else:
            parts: list[str] = []
            for n, (source, thread) in enumerate(sources):
                params[f"s{n}"], params[f"t{n}"] = source, thread
                for op, order, limit in ((">", "ASC", "after"), ("<", "DESC", "before")):
                    parts.append(  # only fixed keywords and column names are interpolated
                        f"SELECT * FROM (SELECT CAST(:s{n} AS INTEGER) AS src, "  # noqa: S608
                        f"{columns} FROM memories WHERE user_id = :uid AND thread_id = :t{n} "
                        f"AND kind = 'turn' AND invalid_at IS NULL AND id {op} :s{n} "
                        f"ORDER BY id {order} LIMIT :{limit}) AS q{n}{limit[0]}"
                    )
            sql = text(" UNION ALL ".join(parts))
        typed = [column("src", Integer), *(column(c.name, c.type) for c in _ROW_COLUMNS)]
        if vector is not None:
            typed.append(column("distance", Float()))
        if vector is not None:
            sql = sql.bindparams(bindparam("q", type_=ARRAY(REAL)))
        result = await self.session.execute(sql.columns(*typed), params)
        found: dict[int, list[int]] = {}
        rows: dict[int, MemoryRow] = {}
        cosines: dict[int, float] = {}
        width = len(_ROW_COLUMNS)
        for r in result:
            found.setdefault(int(r[0]), []).append(int(r[1]))
            rows[int(r[1])] = MemoryRow(*r[1 : 1 + width])
            if vector is not None and r[-1] is not None:
                cosines[int(r[1])] = 1.0 - float(r[-1])
        links: list[tuple[int, int, int]] = []
        for source, ids in found.items():
            later = sorted(i for i in ids if i > source)
            earlier = sorted((i for i in ids if i < source), reverse=True)
            links += [(source, i, n) for n, i in enumerate(later, start=1)]
            links += [(source, i, -n) for n, i in enumerate(earlier, start=1)]
        return links, list(rows.values()), cosines
