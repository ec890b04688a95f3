"""Upgrades keep data: a database at every earlier revision, with rows in every table
(generated from the schema reflected at that revision, tests/db/schema_rows.py), is
upgraded to head and still holds every row, with the values it was written with.

One database per backend climbs the revisions one committed step at a time. At each
revision R, one transaction writes the rows, upgrades R -> head (Alembic on that
connection: DDL is transactional on SQLite and PostgreSQL), checks, and rolls back to
R, so each check starts from a database at R holding only R's rows.

What migrations do to existing rows, asserted explicitly:

- columns added to existing tables: NULL, unless listed in ``NEW_COLUMNS`` with the
  value old rows get (0003: ``turns.steering`` {} and ``turns.memory_ids`` [];
  0008: ``turns.citations`` []); a new NOT NULL or defaulted column missing there fails;
- search structures rebuilt or added by migrations (0009 re-indexes memories by owner:
  FTS5 on SQLite, the generated ``search_words`` on PostgreSQL) find the old rows:
  ``_assert_searchable``;
- no table or column disappears (none is listed in ``DROPPED``).

The drift check (alembic check) lives in test_migrations.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from mongars.db import migrate
from mongars.db.engine import _sqlite_pragmas
from mongars.db.fulltext import fts_quote, owned_words
from tests.db.schema_rows import Snapshot, insert_rows, make_rows, primary_key, read_all, reflect

# (table, column) added to an existing table -> what rows written before get.
NEW_COLUMNS: dict[tuple[str, str], Any] = {
    ("turns", "steering"): {},  # 0003, server default
    ("turns", "memory_ids"): [],  # 0003, server default
    ("turns", "citations"): [],  # 0008, server default: old turns cited nothing
}
# "table" or "table.column" a migration removed on purpose -> why (none so far).
DROPPED: dict[str, str] = {}
Columns = dict[str, dict[str, sa.Column[Any]]]


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    """One connection through the synchronous drivers (pysqlite, psycopg): thousands of
    statements without aiosqlite's thread hop each. SQLite connections get the app's
    set-up (foreign keys on; the memory index's triggers call its function)."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    engine = sa.create_engine(parsed.set(drivername="sqlite" if sqlite else "postgresql+psycopg"))
    if sqlite:
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


class Migrations:
    """``alembic upgrade`` on a given connection, inside its transaction (as
    alembic.command.upgrade does, with the revision files read once, not per call)."""

    def __init__(self, url: str) -> None:
        self.config = migrate.alembic_config(url)
        self.script = ScriptDirectory.from_config(self.config)

    def revisions(self) -> list[str]:
        """Every revision, oldest first (a new migration joins automatically)."""
        return [r.revision for r in reversed(list(self.script.walk_revisions()))]

    def upgrade(self, conn: Connection, destination: str) -> None:
        self.config.attributes["connection"] = conn  # env.py runs on it

        def steps(revision: Any, _context: Any) -> Any:
            return self.script._upgrade_revs(destination, revision)

        with EnvironmentContext(self.config, self.script, fn=steps, destination_rev=destination):
            self.script.run_env()


def _version(conn: Connection) -> str:
    return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())


def _assert_kept(revision: str, before: Snapshot, after: Snapshot, head: Columns) -> None:
    for table, rows in before.items():
        if table not in after:
            assert table in DROPPED, f"from {revision}: table {table} was dropped"
            continue
        for key, old in rows.items():
            new = after[table].get(key)
            assert new is not None, f"from {revision}: {table} row {key} is gone"
            for column, value in old.items():
                if column not in new:
                    assert f"{table}.{column}" in DROPPED, (
                        f"from {revision}: {table}.{column} was dropped"
                    )
                    continue
                assert new[column] == value, (
                    f"from {revision}: {table} row {key}: {column} {value!r} -> {new[column]!r}"
                )
            for column in new.keys() - old.keys():
                assert new[column] == _expected_new(table, head[table][column]), (
                    f"from {revision}: {table} row {key}: new {column} holds {new[column]!r}"
                )


def _expected_new(table: str, column: sa.Column[Any]) -> Any:
    if (table, column.name) in NEW_COLUMNS:
        return NEW_COLUMNS[table, column.name]
    assert column.nullable and column.server_default is None, (
        f"{table}.{column.name} is new, NOT NULL or defaulted: add the value old rows "
        "get to NEW_COLUMNS in tests/db/test_upgrade_data.py"
    )
    return None


def _assert_searchable(revision: str, conn: Connection, before: Snapshot) -> None:
    """Memories and document chunks written before the upgrade are found by their words."""
    postgres = conn.dialect.name == "postgresql"
    for key, row in before.get("memories", {}).items():
        first = row["text"].split()[0]
        if postgres:
            found = conn.execute(
                sa.text(
                    "SELECT id FROM memories WHERE search_words @@ "
                    "mongars_owned_tsquery(:uid, to_tsquery('english', :w))"
                ),
                {"uid": row["user_id"], "w": first},
            )
        else:
            found = conn.execute(
                sa.text("SELECT rowid FROM memories_fts WHERE memories_fts MATCH :q"),
                {"q": fts_quote(owned_words(row["user_id"], first))},
            )
        assert [r[0] for r in found] == [key[0]], (
            f"from {revision}: memory {key} not found by {first!r}"
        )
    for key, row in before.get("doc_chunks", {}).items():
        first = row["text"].split()[0]
        if postgres:
            query = "SELECT id FROM doc_chunks WHERE search_vector @@ to_tsquery('english', :q)"
        else:
            query = "SELECT rowid FROM search_chunks_fts WHERE search_chunks_fts MATCH :q"
        found = conn.execute(sa.text(query), {"q": first if postgres else fts_quote(first)})
        assert [r[0] for r in found] == [key[0]], (
            f"from {revision}: chunk {key} not found by {first!r}"
        )


def _check_from(
    conn: Connection, migrations: Migrations, revision: str, head: list[sa.MetaData]
) -> None:
    """At ``revision``: write rows, upgrade to head, check them (the caller rolls back)."""
    meta = reflect(conn)
    assert meta.tables, f"no table at {revision}"
    rows = make_rows(meta)
    insert_rows(conn, meta, rows)  # the transaction starts before any DDL
    before = {
        name: {primary_key(meta.tables[name], r): r for r in made} for name, made in rows.items()
    }
    migrations.upgrade(conn, "head")
    if not head:
        head.append(reflect(conn))
    columns = {t.name: {c.name: c for c in t.columns} for t in head[0].sorted_tables}
    _assert_kept(revision, before, read_all(conn, head[0], before), columns)
    _assert_searchable(revision, conn, before)


def _climb(url: str) -> None:
    migrations = Migrations(url)
    head: list[sa.MetaData] = []  # reflected once, at the first revision's check
    with _connection(url) as conn:
        for revision in migrations.revisions()[:-1]:
            migrations.upgrade(conn, revision)
            conn.commit()
            try:
                _check_from(conn, migrations, revision, head)
            finally:
                conn.rollback()
            assert _version(conn) == revision, "the check was not rolled back"


def test_sqlite_upgrades_keep_rows(tmp_path: Path) -> None:
    _climb(f"sqlite+aiosqlite:///{tmp_path / 'up.db'}")


@pytest.mark.postgres
def test_postgres_upgrades_keep_rows(pg_database: str) -> None:
    _climb(pg_database)
