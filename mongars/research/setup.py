"""Building the documents system for a running app (called by the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

from mongars.memory.embeddings import Embedder, embedder_from
from mongars.research.contributor import DocumentsContributor
from mongars.research.curiosity import Curiosity
from mongars.research.service import DocumentService
from mongars.runtime import Runtime


@dataclass
class DocumentSystem:
    service: DocumentService
    curiosity: Curiosity
    embedder: Embedder
    owns_embedder: bool

    async def stop(self) -> None:
        if self.owns_embedder:
            self.embedder.close()


async def start_documents(runtime: Runtime, embedder: Embedder | None = None) -> DocumentSystem:
    """Documents share the memory's embedding model when memory runs (one model in RAM)."""
    cfg = runtime.settings.research
    query_vector = None
    if runtime.memory is not None:  # one model in RAM, one embedding of each message
        embedder = embedder or runtime.memory.embedder
        query_vector = runtime.memory.service.recall.query_vector
    owns = embedder is None
    if embedder is None:
        embedder = embedder_from(runtime.settings)
        await embedder.start()
    service = DocumentService(runtime.sessions, embedder, cfg, query_vector)
    curiosity = Curiosity(service, cfg)
    runtime.contributors.append(DocumentsContributor(service, curiosity, runtime.llm, cfg))
    return DocumentSystem(service, curiosity, embedder, owns)
