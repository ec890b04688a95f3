"""Building the memory system for a running app (called by the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

from mongars.memory.cache import create_cache
from mongars.memory.contributor import MemoryContributor
from mongars.memory.embeddings import Embedder, embedder_from
from mongars.memory.facts import FactExtractor
from mongars.memory.retrieval import weights_from
from mongars.memory.service import MemoryService
from mongars.memory.tasks import Indexer
from mongars.runtime import Runtime


@dataclass
class MemorySystem:
    service: MemoryService
    indexer: Indexer
    embedder: Embedder
    owns_embedder: bool

    async def stop(self) -> None:
        await self.indexer.stop()
        if self.service.cache is not None:
            await self.service.cache.close()
        if self.owns_embedder:
            self.embedder.close()


async def start_memory(runtime: Runtime, embedder: Embedder | None = None) -> MemorySystem:
    cfg = runtime.settings.memory
    owns = embedder is None
    embedder = embedder or embedder_from(runtime.settings)
    if owns:
        await embedder.start()
    cache = create_cache(runtime.settings, runtime.metrics.memory_cache)
    service = MemoryService(
        runtime.sessions, embedder, weights_from(cfg), cfg.candidates, cache=cache
    )
    runtime.contributors.append(
        MemoryContributor(
            service, runtime.llm, runtime.settings.memory_context_tokens, facts=cfg.facts
        )
    )
    facts = (
        FactExtractor(service, runtime.llm, runtime.metrics.fact_failures) if cfg.facts else None
    )
    indexer = Indexer(service, facts)
    indexer.start()  # retention, consolidation...: jobs of the scheduler (memory/tasks.py)
    return MemorySystem(service, indexer, embedder, owns)
