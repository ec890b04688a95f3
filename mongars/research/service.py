"""Documents: collections, ingestion (extract -> chunk -> embed -> store), listing, deletion.

Ingestion does all the slow work (extraction, chunking, embedding) before it
touches the database, then writes the document and its chunks in one
transaction: a document is searchable whole or not at all. Re-ingesting the same
bytes under the same path changes nothing; different bytes replace the chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from mongars.memory.embeddings import Embedder
from mongars.research.chunking import Chunk as TextChunk
from mongars.research.chunking import chunk_document
from mongars.research.extract import ExtractedDocument, ExtractionError, extract
from mongars.research.models import SHARED, Chunk, Collection, Document, user_scope
from mongars.research.repository import DocumentRepository
from mongars.research.schemas import (
    CollectionOut,
    DocumentOut,
    DocumentPage,
    GapOut,
    GapPage,
    IngestOut,
)
from mongars.research.search import DocumentSearch
from mongars.settings import ResearchSettings

HELP_BATCH = 32  # chunks per batch when a paired peer helps embed a document

_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ownership and the shared-collection right (admins) follow from it."""

    id: int
    is_admin: bool = False


def extraction_error(exc: ExtractionError) -> Exception:
    """The HTTP-facing error for a document that cannot be ingested."""
    if exc.reason == "too_large":
        return PayloadTooLarge(exc.message)
    if exc.reason == "unsupported_type":
        return UnsupportedMediaType(exc.message)
    return InvalidInput(f"{exc.message} ({exc.reason})")


def clean_path(path: str) -> str:
    """A document's name in its collection: relative, '/'-separated, printable."""
    cleaned = path.replace("\\", "/").strip().lstrip("/")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInput("document path: give a file name (no '..')")
    cleaned = "/".join(parts)
    if len(cleaned) > 1024 or any(ch in _CONTROL for ch in cleaned):
        raise InvalidInput("document path: at most 1,024 printable characters")
    return cleaned


@dataclass(frozen=True, slots=True)
class _Stored:
    """A document ready to write: everything slow is done."""

    path: str
    url: str | None
    sha: str
    size: int
    doc: ExtractedDocument
    chunks: list[TextChunk]
    vectors: np.ndarray


class DocumentService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        settings: ResearchSettings,
        query_vector: Callable[[str], Awaitable[np.ndarray]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.settings = settings
        self.search = DocumentSearch(sessions, embedder, settings.text_weight, query_vector)
        # Embeds a long document's batches with a paired peer's help (docs/peers.md).
        self.helper: Callable[[list[list[str]]], Awaitable[list[np.ndarray]]] | None = None

    # -- collections ----------------------------------------------------------------

    async def create_collection(
        self, actor: Actor, name: str, shared: bool = False, description: str = ""
    ) -> CollectionOut:
        async with unit_of_work(self.sessions) as session:
            collection = await self._collection(DocumentRepository(session), actor, name, shared)
            if description and not collection.description:
                collection.description = description
            return await self._collection_out(DocumentRepository(session), collection)

    async def _collection(
        self, repo: DocumentRepository, actor: Actor, name: str, shared: bool
    ) -> Collection:
        if shared and not actor.is_admin:
            raise Forbidden("only admins can write shared collections")
        scope = SHARED if shared else user_scope(actor.id)
        found = await repo.collection(scope, name)
        if found is not None:
            return found
        try:
            async with repo.session.begin_nested():
                return await repo.add_collection(
                    Collection(scope=scope, name=name, owner_id=None if shared else actor.id)
                )
        except IntegrityError:  # created concurrently
            found = await repo.collection(scope, name)
            if found is None:
                raise Conflict(f"collection {name!r} could not be created") from None
            return found

    async def collections(self, actor: Actor) -> list[CollectionOut]:
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            visible = await repo.visible_collections(actor.id)
            stats = await repo.collection_stats([c.id for c in visible])
            return [_collection_out(c, stats.get(c.id, (0, 0))) for c in visible]

    async def delete_collection(self, actor: Actor, collection_id: int) -> None:
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            collection = await self._writable(repo, actor, collection_id)
            await repo.delete_collection(collection.id)
        self.search.index.forget(collection_id)

    async def _writable(
        self, repo: DocumentRepository, actor: Actor, collection_id: int
    ) -> Collection:
        collection = await repo.collection_by_id(collection_id)
        if collection is None or collection.scope not in (user_scope(actor.id), SHARED):
            raise NotFound("no such collection")
        if collection.scope == SHARED and not actor.is_admin:
            raise Forbidden("only admins can change shared collections")
        return collection

    async def _collection_out(self, repo: DocumentRepository, c: Collection) -> CollectionOut:
        stats = await repo.collection_stats([c.id])
        return _collection_out(c, stats.get(c.id, (0, 0)))

    # -- ingestion ------------------------------------------------------------------

    def prepare(self, data: bytes, path: str, content_type: str | None) -> ExtractedDocument:
        """Extract the text (CPU-bound: call in a thread); domain errors for bad files."""
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"{path}: {len(data):,} bytes is over the limit of "
                f"{self.settings.max_upload_bytes:,} (MONGARS_RESEARCH__MAX_UPLOAD_BYTES)"
            )
        try:
            return extract(
                data,
                filename=path,
                content_type=content_type,
                max_bytes=self.settings.max_upload_bytes,
            )
        except ExtractionError as exc:
            raise extraction_error(exc) from exc

    async def _prepare(self, data: bytes, path: str, content_type: str | None) -> ExtractedDocument:
        return await asyncio.to_thread(self.prepare, data, path, content_type)

    async def ingest(
        self,
        actor: Actor,
        collection: str,
        path: str,
        data: bytes,
        content_type: str | None = None,
        shared: bool = False,
        url: str | None = None,
        extracted: ExtractedDocument | None = None,
    ) -> IngestOut:
        path = clean_path(path)
        sha = hashlib.sha256(data).hexdigest()
        if shared and not actor.is_admin:
            raise Forbidden("only admins can write shared collections")
        async with unit_of_work(self.sessions) as session:  # unchanged? (creates nothing)
            repo = DocumentRepository(session)
            scope = SHARED if shared else user_scope(actor.id)
            found = await repo.collection(scope, collection)
            existing = await repo.document_by_path(found.id, path) if found else None
            if found is not None and existing is not None and existing.sha256 == sha:
                return IngestOut(status="unchanged", document=_document_out(existing, found))
        doc = extracted if extracted is not None else await self._prepare(data, path, content_type)
        chunks = await asyncio.to_thread(
            chunk_document,
            doc,
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=min(self.settings.chunk_overlap_tokens, self.settings.chunk_tokens - 1),
        )
        if not chunks:
            raise InvalidInput(f"{path}: no text to index (empty_document)")
        # A chunk under no heading (plain text, PDF pages) is embedded with the title.
        title = doc.title or path
        texts = [c.context_text() if c.heading_path else f"{title}\n\n{c.text}" for c in chunks]
        if self.helper is not None and len(texts) >= 2 * HELP_BATCH:  # a peer embeds too
            parts = [texts[n : n + HELP_BATCH] for n in range(0, len(texts), HELP_BATCH)]
            vectors = np.concatenate(await self.helper(parts))
        else:
            vectors = await self.embedder.embed(texts)
        stored = _Stored(path, url, sha, len(data), doc, chunks, vectors)
        try:
            return await self._store(actor, collection, shared, stored)
        except IntegrityError:  # the same path stored concurrently: replace it now
            return await self._store(actor, collection, shared, stored)

    async def _store(self, actor: Actor, collection: str, shared: bool, s: _Stored) -> IngestOut:
        """Write the document and its chunks in one transaction (replacing older ones)."""
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            target = await self._collection(repo, actor, collection, shared)
            # The write first: on SQLite it takes the write lock, so the row read next is
            # the newest (a read before it could predate a concurrent replacement, and the
            # columns this write leaves "unchanged" would keep that replacement's values).
            await repo.bump(target.id)
            row = await repo.document_by_path(target.id, s.path, lock=True)
            status = "updated" if row is not None else "created"
            if row is None:
                row = Document(collection_id=target.id, path=s.path, created_at=utcnow())
            else:
                await repo.delete_chunks(row.id)
            row.uploaded_by = actor.id or None  # 0: the operator (CLI)
            row.title, row.format, row.url = s.doc.title or s.path, s.doc.format, s.url
            row.sha256, row.size_bytes, row.pages = s.sha, s.size, s.doc.pages
            row.chunk_count, row.updated_at = len(s.chunks), utcnow()
            await repo.add_document(row)
            await repo.add_chunks(
                [
                    Chunk(
                        document_id=row.id,
                        collection_id=target.id,
                        position=c.index,
                        section=c.section,
                        page=c.page,
                        start_char=c.start_char,
                        end_char=c.end_char,
                        text=c.text,
                        embedding=s.vectors[n],
                    )
                    for n, c in enumerate(s.chunks)
                ]
            )
            return IngestOut(status=status, document=_document_out(row, target))  # type: ignore[arg-type]

    # -- reading and deleting ---------------------------------------------------------

    async def documents(
        self, actor: Actor, collection: str | None, cursor: int | None, limit: int
    ) -> DocumentPage:
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            visible = await repo.visible_collections(
                actor.id, [collection] if collection is not None else None
            )
            if collection is not None and not visible:
                raise NotFound(f"no collection named {collection!r}")
            by_id = {c.id: c for c in visible}
            rows = await repo.documents(list(by_id), cursor, limit + 1)
            items = [_document_out(d, by_id[d.collection_id]) for d in rows[:limit]]
            return DocumentPage(
                items=items, next_cursor=items[-1].id if len(rows) > limit else None
            )

    async def document(self, actor: Actor, document_id: int) -> DocumentOut:
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            doc, collection = await self._readable(repo, actor, document_id)
            return _document_out(doc, collection)

    async def delete_document(self, actor: Actor, document_id: int) -> None:
        async with unit_of_work(self.sessions) as session:
            repo = DocumentRepository(session)
            doc, collection = await self._readable(repo, actor, document_id)
            if collection.scope == SHARED and not actor.is_admin:
                raise Forbidden("only admins can delete shared documents")
            await repo.delete_document(doc.id)
            await repo.bump(collection.id)

    async def _readable(
        self, repo: DocumentRepository, actor: Actor, document_id: int
    ) -> tuple[Document, Collection]:
        doc = await repo.document(document_id)
        collection = await repo.collection_by_id(doc.collection_id) if doc else None
        if (
            doc is None
            or collection is None
            or collection.scope not in (user_scope(actor.id), SHARED)
        ):
            raise NotFound("no such document")  # another user's: not found, not forbidden
        return doc, collection

    async def gaps(self, user_id: int | None, cursor: int | None, limit: int) -> GapPage:
        """Knowledge gaps, newest first (``user_id`` None: everyone's)."""
        async with unit_of_work(self.sessions) as session:
            rows = await DocumentRepository(session).gaps(user_id, cursor, limit + 1)
            items = [GapOut.model_validate(g, from_attributes=True) for g in rows[:limit]]
            return GapPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


def _collection_out(c: Collection, stats: tuple[int, int]) -> CollectionOut:
    return CollectionOut(
        id=c.id,
        name=c.name,
        shared=c.scope == SHARED,
        description=c.description,
        documents=stats[0],
        chunks=stats[1],
        created_at=c.created_at,
    )


def _document_out(d: Document, c: Collection) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        collection=c.name,
        collection_id=c.id,
        shared=c.scope == SHARED,
        path=d.path,
        title=d.title,
        format=d.format,
        url=d.url,
        sha256=d.sha256,
        size_bytes=d.size_bytes,
        pages=d.pages,
        chunks=d.chunk_count,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )
