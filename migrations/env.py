"""Alembic environment: the URL comes from the config attribute set by
mongars.db.migrate (or from MONGARS_* settings when run by `alembic` directly)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mongars.db.base import import_all_models
from mongars.db.engine import create_engine

config = context.config
target_metadata = import_all_models().metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from mongars.settings import Settings

    return Settings().resolved_database_url


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
                    ) -> bool:
    """Search structures made by migrations only (FTS5 tables and their shadow tables,
    tsvector columns, vector and GIN indexes) are not in the models: skip them."""
    return not (name or "").startswith(("memories_fts", "search_"))


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        include_object=_include_object,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
        user_module_prefix="mongars.db.base.",
    )


def _run_sync(connection: Connection) -> None:
    """On SQLite, foreign keys are off while migrating: batch mode rebuilds a table by
    dropping it, which with them on would delete or null every row pointing at it
    (rebuilding ``users`` would empty ``threads``). The keys are checked before the
    migrations commit instead. A caller's open transaction (tests) keeps its setting:
    SQLite ignores the pragma inside one."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite and not connection.in_transaction():
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()  # end SQLAlchemy's autobegun transaction; nothing to write
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"a migration left rows with broken foreign keys: {broken[:5]}")
    if sqlite and not connection.in_transaction():
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run_sync(existing)
    else:
        asyncio.run(_run_async())
