"""Document tables: collections, documents, their chunks, and knowledge gaps.

Chunks are searched like memories: full text (an FTS5 table on SQLite, a
generated tsvector on PostgreSQL, both made by migration 0008) and embeddings
(pgvector HNSW on PostgreSQL, the in-process index of research/index.py on SQLite).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow
from mongars.memory.models import Embedding

SHARED = "shared"  # the scope of collections every user can read (admins write them)


def user_scope(user_id: int) -> str:
    return f"u{user_id}"


class Collection(Base):
    """A named set of documents: a user's own (scope u<id>) or shared (scope 'shared').
    A source repository ingested with the CLI is one collection."""

    __tablename__ = "doc_collections"
    __table_args__ = (UniqueConstraint("scope", "name", name="uq_doc_collections_scope_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(24), index=True)
    name: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    # Moves on every change of its chunks: in-process indexes reload on a new version.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "path", name="uq_documents_collection_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("doc_collections.id", ondelete="CASCADE"), index=True
    )
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    path: Mapped[str] = mapped_column(String(1024))  # file name or path inside a repository
    title: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(16))  # pdf | markdown | html | text | code
    url: Mapped[str | None] = mapped_column(Text, nullable=True)  # where it was fetched from
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes: unchanged files are skipped
    size_bytes: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer, default=1)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Chunk(Base):
    __tablename__ = "doc_chunks"
    __table_args__ = (Index("ix_doc_chunks_document_position", "document_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("doc_collections.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # order in the document
    section: Mapped[str] = mapped_column(Text, default="")  # heading path, "A > B"
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    start_char: Mapped[int] = mapped_column(Integer, default=0)
    end_char: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[np.ndarray | None] = mapped_column(Embedding, nullable=True)


class KnowledgeGap(Base):
    """A question neither memory nor documents covered well enough (curiosity.py)."""

    __tablename__ = "knowledge_gaps"
    __table_args__ = (Index("ix_knowledge_gaps_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    missing_terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    coverage: Mapped[float] = mapped_column(Float, default=0.0)  # share of key terms found
    best_score: Mapped[float] = mapped_column(Float, default=0.0)  # best retrieval similarity
    # open (research off) | researched (sources ingested) | failed (research found nothing)
    status: Mapped[str] = mapped_column(String(16), default="open")
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
