"""Retention: memories of a kind older than its configured number of days are deleted.

``MemorySettings.retention_days`` maps a kind to days kept (``{"turn": 365}``);
a kind that is absent, or set to 0, is kept forever. Age is measured from
``created_at`` (when the remembered thing happened). Deleting goes through the
repository, so full-text entries go with the rows and the user's memory epoch
moves (in-process indexes and caches drop what was deleted).

The scheduler's ``memory.retention`` job runs a pass daily (docs/jobs.md);
``mongars memory retention`` runs one now.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.memory.repository import MemoryRepository
from mongars.memory.schemas import RetentionReport

log = logging.getLogger(__name__)

BATCH = 500  # ids per DELETE (well under SQLite's bound-parameter limit)


async def apply_retention(
    sessions: async_sessionmaker[AsyncSession],
    retention_days: Mapping[str, int],
    now: datetime | None = None,
) -> RetentionReport:
    """Delete expired memories, kind by kind; one transaction per batch."""
    now = now or utcnow()
    deleted: dict[str, int] = {}
    for kind, days in sorted(retention_days.items()):
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        async with unit_of_work(sessions) as session:
            expired = await MemoryRepository(session).older_than(kind, cutoff)
        by_user: dict[int, list[int]] = defaultdict(list)
        for memory_id, user_id in expired:
            by_user[user_id].append(memory_id)
        count = 0
        for user_id, ids in by_user.items():
            for start in range(0, len(ids), BATCH):
                async with unit_of_work(sessions) as session:
                    count += await MemoryRepository(session).delete(
                        user_id, ids[start : start + BATCH]
                    )
        deleted[kind] = count
        if count:
            log.info("retention: deleted %d %s memories older than %d days", count, kind, days)
    return RetentionReport(deleted=deleted, total=sum(deleted.values()), ran_at=now)
