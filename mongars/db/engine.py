"""Engine and session factory, created by the app lifespan or a CLI command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mongars.db.fulltext import OWNED_WORDS_SQL, owned_words


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"server_settings": dict(PG_SESSION_SETTINGS)},
    )


PG_SESSION_SETTINGS = {
    # asyncpg prepares every statement, and after five runs PostgreSQL may keep one
    # generic plan for all parameter values: planned for an average user, a search
    # of a user with 100,000 memories then scans them all instead of using the HNSW
    # index (tens of ms instead of a few). Custom plans cost a fraction of a ms.
    "plan_cache_mode": "force_custom_plan",
    # pgvector HNSW scans (memories, document chunks) filter by owner: walk on past
    # the first candidates until enough rows pass the filter, keeping 100 while
    # walking. Set once per connection rather than per search (a round trip each).
    "hnsw.iterative_scan": "relaxed_order",
    "hnsw.ef_search": "100",
}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # used by the memory index's triggers (migration 0009)
    dbapi_conn.create_function(OWNED_WORDS_SQL, 2, owned_words, deterministic=True)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on error.

    Request handlers get one through ``SessionDep``; streaming code, which
    outlives its request's dependencies, opens short ones with this.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def reads(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads. On PostgreSQL it runs no transaction: each
    statement sees what was committed when it started, as in a READ COMMITTED
    transaction, without the BEGIN and COMMIT round trips (searches)."""
    async with factory() as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any driver error means "not ready"
        return False
