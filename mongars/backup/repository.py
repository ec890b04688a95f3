"""The SQL backups need: a snapshot's migration, a target's emptiness, MLflow's paths."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# MLflow's sqlite store keeps absolute artifact locations (see restore.relocate).
MLFLOW_PATH_COLUMNS = {
    "experiments": "artifact_location",
    "runs": "artifact_uri",
    "logged_models": "artifact_location",
}


def sqlite_revision(path: Path) -> str | None:
    """The alembic revision stored in a SQLite database file (None: never migrated)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        if row is None:
            return None
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if found is None else str(found[0])
    finally:
        conn.close()


def relocate_mlflow(path: Path, old: str, new: str) -> int:
    """Rewrite ``old`` (a folder, with its trailing slash) to ``new`` in MLflow's
    artifact locations; the number of rows changed."""
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        changed = 0
        with conn:
            for table, column in MLFLOW_PATH_COLUMNS.items():
                if table in tables:
                    cur = conn.execute(
                        f"UPDATE {table} SET {column} = replace({column}, ?, ?) "  # noqa: S608
                        f"WHERE instr({column}, ?) > 0",
                        (old, new, old),
                    )
                    changed += cur.rowcount
        return changed
    finally:
        conn.close()


async def pg_server_version(engine: AsyncEngine) -> int:
    """``server_version_num``, e.g. 180001: picks a pg_dump / pg_restore that fits."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SHOW server_version_num"))).scalar_one())


async def pg_user_relations(engine: AsyncEngine) -> list[str]:
    """Tables, views and sequences outside PostgreSQL's own schemas (a target must have
    none), and the schemas a dump creates; a few names, for the error message."""
    sql = text(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'v', 'm', 'S', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' "
        "ORDER BY 1 LIMIT 5"
    )
    async with engine.connect() as conn:
        return [str(r[0]) for r in await conn.execute(sql)]
