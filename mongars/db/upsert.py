"""``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL.

For a row two writers may create at once (get-or-create, a repair racing the normal
write): the second insert does nothing instead of failing. Preferred over a savepoint
around a plain insert: on SQLite a savepoint that opens the transaction makes a
write touching a full-text (FTS5) table fail at once with "database is locked" when
another connection writes, where a plain insert waits its busy timeout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


async def insert_if_absent(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    conflict: Sequence[str],
) -> bool:
    """Insert one row unless one with the same ``conflict`` columns (a unique
    constraint) exists; whether this call inserted it."""
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
