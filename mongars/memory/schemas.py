"""Request and response bodies for the memory API (/api/v1/memory, docs/memory.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

TEXT_MAX = 8000
QUERY_MAX = 2000


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# 1..8000 characters, surrounding whitespace removed, no NUL.
MemoryText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=TEXT_MAX),
    AfterValidator(_clean_text),
]


class MemoryCreate(BaseModel):
    text: MemoryText = Field(description="What to remember (a note), 1-8000 characters.")


class MemoryEdit(BaseModel):
    text: MemoryText = Field(description="The new text, 1-8000 characters.")


class MemoryOut(BaseModel):
    id: int
    kind: str = Field(description="turn | note | fact | summary")
    text: str
    created_at: datetime = Field(description="When the remembered thing happened.")
    updated_at: datetime
    thread_id: str | None
    turn_id: int | None
    subject: str | None
    valid_from: datetime | None
    invalid_at: datetime | None
    source_ids: list[int] = Field(description="Memories a summary or merge was made from.")
    indexed: bool = Field(description="Embedded for semantic recall (full-text works at once).")


class MemoryPage(BaseModel):
    items: list[MemoryOut]
    next_cursor: str | None


class MemoryHitOut(BaseModel):
    id: int
    kind: str
    text: str
    created_at: datetime
    thread_id: str | None
    turn_id: int | None
    score: float = Field(description="Fused relevance (higher is better); for ordering only.")


class SearchOut(BaseModel):
    query: str
    items: list[MemoryHitOut]


class ForgetAllOut(BaseModel):
    deleted: int


class RetentionReport(BaseModel):
    """What one retention pass deleted, per kind."""

    deleted: dict[str, int]
    total: int
    ran_at: datetime


class ConsolidationReport(BaseModel):
    users: int = 0
    duplicate_groups: int = 0
    merged: int = Field(default=0, description="Near-duplicates folded into a newer memory.")
    summaries: int = Field(default=0, description="Threads summarised into a summary memory.")
    errors: list[str] = []


class AccountExport(BaseModel):
    username: str
    created_at: datetime
    is_admin: bool
    is_active: bool


class ExportOut(BaseModel):
    """Everything monGARS stores about one user (no password or key hashes, no vectors)."""

    format: str = "mongars-export/1"
    exported_at: datetime
    account: AccountExport
    threads: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    memories: list[dict[str, Any]]
    api_keys: list[dict[str, Any]]
    persona: dict[str, Any] | None
    # Documents (own collections only; shared ones belong to everyone) and knowledge gaps.
    collections: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    document_chunks: list[dict[str, Any]] = []
    knowledge_gaps: list[dict[str, Any]] = []
    # Your ratings, suggested answers and comments on answers (one per turn at most).
    feedback: list[dict[str, Any]] = []
