"""Pydantic I/O of the documents, search, rag-context and knowledge-gap endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

COLLECTION_PATTERN = r"^[\w][\w./@+ -]{0,99}$"


class CollectionCreate(BaseModel):
    name: str = Field(pattern=COLLECTION_PATTERN, description="letters, digits, . / _ @ + - space")
    shared: bool = Field(default=False, description="visible to every user (admins only)")
    description: str = Field(default="", max_length=2000)


class CollectionOut(BaseModel):
    id: int
    name: str
    shared: bool
    description: str
    documents: int
    chunks: int
    created_at: datetime


class DocumentOut(BaseModel):
    id: int
    collection: str
    collection_id: int
    shared: bool
    path: str
    title: str
    format: str
    url: str | None
    sha256: str
    size_bytes: int
    pages: int
    chunks: int
    created_at: datetime
    updated_at: datetime


class IngestOut(BaseModel):
    status: Literal["created", "updated", "unchanged"]
    document: DocumentOut


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: int | None = Field(description="pass as ?cursor= for the next page")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = Field(default=None, description="default: every visible one")
    k: int = Field(default=5, ge=1, le=50)


class Passage(BaseModel):
    chunk_id: int
    document_id: int
    collection: str
    path: str
    title: str
    section: str
    page: int | None
    url: str | None
    text: str
    score: float
    dense: float = Field(description="cosine similarity to the query")
    lexical: float = Field(description="full-text relevance, 1 = best of this search")


class SearchResponse(BaseModel):
    query: str
    passages: list[Passage]


class Citation(BaseModel):
    """A passage an answer was given, numbered as in its prompt ([n])."""

    n: int
    chunk_id: int
    document_id: int
    collection: str
    path: str
    title: str
    section: str
    page: int | None
    url: str | None
    score: float
    excerpt: str


class RagContextRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    repositories: list[str] | None = None
    max_results: int | None = Field(default=None, ge=1, le=50)


class RagReference(BaseModel):
    repository: str
    file_path: str
    summary: str
    score: float | None = None
    url: str | None = None


class RagContextResponse(BaseModel):
    enabled: bool
    focus_areas: list[str]
    references: list[RagReference]


class GapOut(BaseModel):
    id: int
    user_id: int
    question: str
    missing_terms: list[str]
    coverage: float
    best_score: float
    status: str
    sources: list[dict[str, object]]
    error: str | None
    created_at: datetime


class GapPage(BaseModel):
    items: list[GapOut]
    next_cursor: int | None
