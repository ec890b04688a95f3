"""Background memory work: the indexer that embeds what was stored without embeddings."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mongars.memory.facts import FactExtractor
from mongars.memory.service import MemoryService

log = logging.getLogger(__name__)


class Indexer:
    """Embeds pending memories whenever some are stored, and once at start-up
    (which also repairs turns a crash left without a memory)."""

    def __init__(
        self,
        memory: MemoryService,
        facts: FactExtractor | None = None,
        idle_check_s: float = 30.0,
    ) -> None:
        self.memory = memory
        self.facts = facts
        self.idle_check_s = idle_check_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.memory.pending.set()
        self._task = asyncio.create_task(self._loop(), name="memory-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.memory.pending.wait(), self.idle_check_s)
            self.memory.pending.clear()
            try:
                done = await self.memory.index_pending()
                if done:
                    log.debug("indexed %d memories", done)
                while self.facts is not None and await self.facts.run_pending():
                    pass
            except Exception:  # keep indexing later; the rows stay pending
                log.exception("memory indexing failed; will retry")
                await asyncio.sleep(5)
