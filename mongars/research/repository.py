"""All SQL for documents: collections, documents, chunks and their search, gaps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import Float, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.db.fulltext import fts_quote, pg_tsquery
from mongars.memory.models import EMBEDDING_DIM, Embedding
from mongars.research.models import SHARED, Chunk, Collection, Document, KnowledgeGap, user_scope


class ChunkRow(NamedTuple):
    """A chunk with what a citation needs from its document and collection."""

    id: int
    document_id: int
    collection_id: int
    collection: str
    path: str
    title: str
    url: str | None
    section: str
    page: int | None
    position: int
    text: str


class CollectionVectors(NamedTuple):
    ids: np.ndarray  # int64
    matrix: np.ndarray  # (n, 384) float32


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    # -- collections ----------------------------------------------------------------

    async def collection(self, scope: str, name: str) -> Collection | None:
        return await self.session.scalar(
            select(Collection).where(Collection.scope == scope, Collection.name == name)
        )

    async def collection_by_id(self, collection_id: int) -> Collection | None:
        return await self.session.get(Collection, collection_id)

    async def add_collection(self, collection: Collection) -> Collection:
        self.session.add(collection)
        await self.session.flush()
        return collection

    async def visible_collections(
        self, user_id: int, names: Sequence[str] | None = None
    ) -> list[Collection]:
        """The user's own collections and the shared ones (optionally only these names),
        own first, by name."""
        query = select(Collection).where(Collection.scope.in_([user_scope(user_id), SHARED]))
        if names is not None:
            query = query.where(Collection.name.in_(list(names)))
        rows = (await self.session.scalars(query)).all()
        return sorted(rows, key=lambda c: (c.scope == SHARED, c.name))

    async def collection_stats(self, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """collection id -> (documents, chunks)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(
                Document.collection_id,
                func.count(),
                func.coalesce(func.sum(Document.chunk_count), 0),
            )
            .where(Document.collection_id.in_(list(ids)))
            .group_by(Document.collection_id)
        )
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}

    async def delete_collection(self, collection_id: int) -> None:
        # chunks first: their FTS5 trigger needs the rows (ON DELETE CASCADE skips triggers
        # only on SQLite without recursive triggers; explicit is clearer anyway)
        await self.session.execute(delete(Chunk).where(Chunk.collection_id == collection_id))
        await self.session.execute(delete(Document).where(Document.collection_id == collection_id))
        await self.session.execute(delete(Collection).where(Collection.id == collection_id))

    async def bump(self, collection_id: int) -> None:
        await self.session.execute(
            update(Collection)
            .where(Collection.id == collection_id)
            .values(version=Collection.version + 1)
        )

    # -- documents ------------------------------------------------------------------

    async def document(self, document_id: int) -> Document | None:
        return await self.session.get(Document, document_id)

    async def document_by_path(
        self, collection_id: int, path: str, lock: bool = False
    ) -> Document | None:
        """``lock``: hold the row until commit (PostgreSQL), so two replacements of one
        document run one after the other and neither leaves its chunks behind."""
        query = select(Document).where(
            Document.collection_id == collection_id, Document.path == path
        )
        return await self.session.scalar(query.with_for_update() if lock else query)

    async def add_document(self, document: Document) -> Document:
        self.session.add(document)
        await self.session.flush()
        return document

    async def documents(
        self, collection_ids: Sequence[int], before_id: int | None, limit: int
    ) -> list[Document]:
        """Newest first, keyset-paginated by id."""
        query = select(Document).where(Document.collection_id.in_(list(collection_ids)))
        if before_id is not None:
            query = query.where(Document.id < before_id)
        return list(
            (await self.session.scalars(query.order_by(Document.id.desc()).limit(limit))).all()
        )

    async def delete_chunks(self, document_id: int) -> None:
        await self.session.execute(delete(Chunk).where(Chunk.document_id == document_id))

    async def delete_document(self, document_id: int) -> None:
        await self.delete_chunks(document_id)
        await self.session.execute(delete(Document).where(Document.id == document_id))

    async def add_chunks(self, chunks: Sequence[Chunk]) -> None:
        self.session.add_all(chunks)
        await self.session.flush()

    # -- search ---------------------------------------------------------------------

    async def text_scored(
        self, collection_ids: Sequence[int], terms: Sequence[str], k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, relevance) best first: BM25 (FTS5) on SQLite, ts_rank_cd on
        PostgreSQL; any of the terms matches."""
        if not terms or not collection_ids:
            return []
        if self.dialect == "postgresql":
            rows = await self.session.execute(
                text(
                    "SELECT id, ts_rank_cd(search_vector, query, 1) AS r "
                    "FROM doc_chunks, to_tsquery('english', :q) query "
                    "WHERE collection_id = ANY(:cids) AND search_vector @@ query "
                    "ORDER BY r DESC, id DESC LIMIT :k"
                ),
                {"q": pg_tsquery(terms), "cids": list(collection_ids), "k": k},
            )
            return [(int(r[0]), float(r[1])) for r in rows]
        owners = " OR ".join(f"c{int(c)}" for c in collection_ids)
        words = " OR ".join(fts_quote(t) for t in terms)
        rows = await self.session.execute(
            text(
                "SELECT rowid, -bm25(search_chunks_fts, 1.0, 0.0) AS r FROM search_chunks_fts "
                "WHERE search_chunks_fts MATCH :match ORDER BY bm25(search_chunks_fts, 1.0, 0.0) "
                "LIMIT :k"
            ),
            {"match": f"coll:({owners}) AND ({words})", "k": k},
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    async def dense_scored(
        self, collection_ids: Sequence[int], vector: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """PostgreSQL only: (chunk id, cosine) of the nearest chunks (pgvector HNSW)."""
        if not collection_ids:
            return []
        # HNSW scan settings: per connection (mongars.db.engine.PG_SESSION_SETTINGS)
        distance = Chunk.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        rows = await self.session.execute(
            select(Chunk.id, distance)
            .where(Chunk.collection_id.in_(list(collection_ids)), Chunk.embedding.is_not(None))
            .order_by(distance)
            .limit(k)
        )
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    async def cosines(
        self, collection_ids: Sequence[int], ids: Sequence[int], vector: np.ndarray
    ) -> dict[int, float]:
        """PostgreSQL only: cosine similarity of these chunks to ``vector``."""
        if not ids:
            return {}
        distance = Chunk.embedding.op("<=>", return_type=Float())(
            bindparam("q", vector, type_=Embedding())
        )
        rows = await self.session.execute(
            select(Chunk.id, distance).where(
                Chunk.id.in_(list(ids)), Chunk.collection_id.in_(list(collection_ids))
            )
        )
        return {int(r[0]): 1.0 - float(r[1]) for r in rows}

    async def vectors(self, collection_id: int) -> CollectionVectors:
        """Every embedded chunk of a collection (for the in-process index)."""
        rows = (
            await self.session.execute(
                select(Chunk.id, Chunk.embedding)
                .where(Chunk.collection_id == collection_id, Chunk.embedding.is_not(None))
                .order_by(Chunk.id)
            )
        ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.empty((len(rows), EMBEDDING_DIM), dtype=np.float32)
        for n, r in enumerate(rows):
            matrix[n] = r[1]
        return CollectionVectors(ids, matrix)

    async def chunk_rows(self, collection_ids: Sequence[int], ids: Sequence[int]) -> list[ChunkRow]:
        """Chunks by id, only from these collections."""
        if not ids:
            return []
        rows = await self.session.execute(
            select(
                Chunk.id,
                Chunk.document_id,
                Chunk.collection_id,
                Collection.name,
                Document.path,
                Document.title,
                Document.url,
                Chunk.section,
                Chunk.page,
                Chunk.position,
                Chunk.text,
            )
            .join(Document, Document.id == Chunk.document_id)
            .join(Collection, Collection.id == Chunk.collection_id)
            .where(Chunk.id.in_(list(ids)), Chunk.collection_id.in_(list(collection_ids)))
        )
        return [ChunkRow(*r) for r in rows]

    async def chunks_of(self, document_id: int) -> list[Chunk]:
        return list(
            (
                await self.session.scalars(
                    select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.position)
                )
            ).all()
        )

    # -- knowledge gaps -------------------------------------------------------------

    async def add_gap(self, gap: KnowledgeGap) -> KnowledgeGap:
        self.session.add(gap)
        await self.session.flush()
        return gap

    async def gaps(
        self, user_id: int | None, before_id: int | None, limit: int, status: str | None = None
    ) -> list[KnowledgeGap]:
        """Newest first; ``user_id`` None: everyone's (admins)."""
        query = select(KnowledgeGap)
        if user_id is not None:
            query = query.where(KnowledgeGap.user_id == user_id)
        if status is not None:
            query = query.where(KnowledgeGap.status == status)
        if before_id is not None:
            query = query.where(KnowledgeGap.id < before_id)
        query = query.order_by(KnowledgeGap.id.desc()).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def update_gap(self, gap_id: int, **values: object) -> None:
        await self.session.execute(
            update(KnowledgeGap).where(KnowledgeGap.id == gap_id).values(**values)
        )

    async def export_rows(
        self, user_id: int
    ) -> tuple[list[Collection], list[Document], list[Chunk], list[KnowledgeGap]]:
        """The user's own collections, their documents and chunks, and the user's gaps."""
        collections = list(
            (
                await self.session.scalars(
                    select(Collection)
                    .where(Collection.scope == user_scope(user_id))
                    .order_by(Collection.id)
                )
            ).all()
        )
        ids = [c.id for c in collections]
        documents = list(
            (
                await self.session.scalars(
                    select(Document).where(Document.collection_id.in_(ids)).order_by(Document.id)
                )
            ).all()
        )
        chunks = list(
            (
                await self.session.scalars(
                    select(Chunk)
                    .where(Chunk.collection_id.in_(ids))
                    .order_by(Chunk.document_id, Chunk.position)
                )
            ).all()
        )
        gaps = list(
            (
                await self.session.scalars(
                    select(KnowledgeGap)
                    .where(KnowledgeGap.user_id == user_id)
                    .order_by(KnowledgeGap.id)
                )
            ).all()
        )
        return collections, documents, chunks, gaps

    async def delete_gaps(self, user_id: int) -> None:
        await self.session.execute(delete(KnowledgeGap).where(KnowledgeGap.user_id == user_id))
