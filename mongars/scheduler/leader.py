"""One scheduler per deployment: a file lock on SQLite (one machine), a PostgreSQL
advisory lock (held by one open connection) when several processes share PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# pg_try_advisory_lock key: "mongars_scheduler" hashed into a bigint once, fixed here.
ADVISORY_KEY = 7_330_215_401_266_142_931


class LeaderLock:
    def __init__(self, engine: AsyncEngine, lock_file: Path) -> None:
        self.engine = engine
        self.lock_file = lock_file
        self._file: IO[str] | None = None
        self._conn: AsyncConnection | None = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def acquire(self) -> bool:
        """Non-blocking: True if this process now leads."""
        if self.postgres:
            conn = await self.engine.connect()
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            await conn.commit()
            if got:
                self._conn = conn
                return True
            await conn.close()
            return False
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = self.lock_file.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    async def still_held(self) -> bool:
        """The advisory lock goes with its connection; check that it is alive."""
        if self._conn is None:
            return self._file is not None
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
            return True
        except Exception:
            return False

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                await self._conn.commit()
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
