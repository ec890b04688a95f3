"""Rows for every table of a reflected schema, and a read-back of them.

Values follow the reflected column types, NOT NULL, foreign keys (parents first,
each child row pointing at a parent row), unique constraints (every value carries a
counter) and the value lists of enums and ``col IN (...)`` check constraints. So a
table added by a future migration gets rows with no edit here; a type nobody taught
``column_value`` fails loudly instead of being skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import sqlalchemy as sa
from pgvector.sqlalchemy import VECTOR  # registers "vector" for PostgreSQL reflection
from sqlalchemy.engine import Connection

# Search structures made by migrations (FTS5 tables and their shadow tables); the
# same rule as migrations/env.py. They are checked through their queries instead.
SEARCH_PREFIXES = ("memories_fts", "search_")
ROWS_PER_TABLE = 2  # the first with every column set, the second with NULLs where allowed

Key = tuple[Any, ...]
Snapshot = dict[str, dict[Key, dict[str, Any]]]


def reflect(conn: Connection) -> sa.MetaData:
    """The application's tables as they are in the database now."""
    meta = sa.MetaData()
    meta.reflect(
        conn,
        only=lambda name, _meta: name != "alembic_version" and not name.startswith(SEARCH_PREFIXES),
    )
    return meta


def stored_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """Columns that hold written values (generated columns are computed by the database)."""
    return [c for c in table.columns if c.computed is None]


def word(n: int) -> str:
    """The distinct word in the text values of row value ``n`` (full-text checks)."""
    return f"w{n}"


def _choices(table: sa.Table) -> dict[str, list[str]]:
    """Allowed values read from enums and from check constraints that name one column
    and list literals (``kind IN ('a', 'b')``, or PostgreSQL's ``= ANY (ARRAY[...])``)."""
    allowed: dict[str, list[str]] = {}
    for column in table.columns:
        enums = getattr(column.type, "enums", None)
        if enums:
            allowed[column.name] = list(enums)
    for constraint in table.constraints:
        if not isinstance(constraint, sa.CheckConstraint):
            continue
        sql = str(constraint.sqltext)
        named = [c.name for c in table.columns if re.search(rf"\b{re.escape(c.name)}\b", sql)]
        literals = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", sql)]
        if len(named) == 1 and literals:
            allowed[named[0]] = literals
    return allowed


def column_value(column: sa.Column[Any], n: int, allowed: list[str] | None) -> Any:
    """A value of the column's type, distinct for each ``n``."""
    kind = column.type
    if allowed:
        return allowed[n % len(allowed)]
    if isinstance(kind, sa.Boolean):
        return n % 2 == 0
    if isinstance(kind, sa.Integer):
        return n
    if isinstance(kind, sa.Float | sa.Numeric):
        return n + 0.25
    if isinstance(kind, sa.DateTime):
        moment = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC) + timedelta(seconds=n)
        return moment if kind.timezone else moment.replace(tzinfo=None)
    if isinstance(kind, sa.JSON):
        return {"n": n, "items": [1, "deux", None], "quote": "l'été"}
    if isinstance(kind, VECTOR):
        return [((n + i) % 64) / 64 for i in range(kind.dim or 3)]  # exact in float32
    if isinstance(kind, sa.LargeBinary):
        return bytes((n + i) % 256 for i in range(16))
    if isinstance(kind, sa.String):  # Text included; a quote and accents on purpose
        text = f"{word(n)} {column.name} l'été naïve"
        return text[: kind.length] if kind.length else text
    raise AssertionError(
        f"no test value for {column.table.name}.{column.name} of type {kind!r}: "
        "teach tests/db/schema_rows.py:column_value this type"
    )


def make_rows(meta: sa.MetaData) -> dict[str, list[dict[str, Any]]]:
    """``ROWS_PER_TABLE`` rows for every table, parents before children."""
    counter = count(1001)
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in meta.sorted_tables:
        allowed = _choices(table)
        fk_columns = {e.parent.name for e in table.foreign_keys}
        made = []
        for i in range(ROWS_PER_TABLE):
            row: dict[str, Any] = {}
            for column in stored_columns(table):
                if column.name in fk_columns:
                    continue
                if i and column.nullable and not column.primary_key:
                    row[column.name] = None
                else:
                    row[column.name] = column_value(column, next(counter), allowed.get(column.name))
            made.append(row)
        for constraint in table.foreign_key_constraints:
            parents = rows.get(constraint.referred_table.name) or made  # self-reference
            for i, row in enumerate(made):
                optional = all(c.nullable and not c.primary_key for c in constraint.columns)
                parent = parents[i % len(parents)]
                for element in constraint.elements:
                    value = parent[element.column.name]
                    row[element.parent.name] = None if i and optional else value
        rows[table.name] = made
    return rows


def insert_rows(conn: Connection, meta: sa.MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table in meta.sorted_tables:
        conn.execute(table.insert(), rows[table.name])


def primary_key(table: sa.Table, row: Mapping[Any, Any]) -> Key:
    return tuple(row[c.name] for c in table.primary_key.columns)


def _plain(value: Any) -> Any:
    """Comparable form of a read value (pgvector returns numpy arrays)."""
    if hasattr(value, "tolist"):
        return [float(x) for x in value.tolist()]
    return value


def read_all(conn: Connection, meta: sa.MetaData, tables: Iterable[str]) -> Snapshot:
    """Every row of these tables (those that exist), by primary key, stored columns only."""
    snapshot: Snapshot = {}
    for name in tables:
        if name not in meta.tables:
            continue
        table = meta.tables[name]
        columns = stored_columns(table)
        snapshot[name] = {
            primary_key(table, r): {c.name: _plain(r[c.name]) for c in columns}
            for r in conn.execute(sa.select(*columns)).mappings()
        }
    return snapshot
