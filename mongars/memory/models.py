"""Memory tables. Full-text indexes are created by the migration (FTS5 on SQLite,
a generated tsvector on PostgreSQL); embeddings are pgvector on PostgreSQL and
float32 blobs on SQLite (searched by an in-process index, see index.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from mongars.db.base import Base, UTCDateTime, utcnow

EMBEDDING_DIM = 384


class Embedding(TypeDecorator[np.ndarray]):
    """A 384-float vector: pgvector ``vector(384)`` on PostgreSQL, a blob elsewhere."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import Vector

            return dialect.type_descriptor(Vector(EMBEDDING_DIM))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: np.ndarray | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        vector = np.asarray(value, dtype=np.float32)
        return vector if dialect.name == "postgresql" else vector.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | memoryview):
            return np.frombuffer(bytes(value), dtype=np.float32)
        return np.asarray(value, dtype=np.float32)


class Memory(Base):
    """One thing monGARS remembers about a user: a turn, a fact or a summary."""

    __tablename__ = "memories"
    __table_args__ = (
        Index("ix_memories_user_created", "user_id", "created_at"),
        Index("ix_memories_user_pending", "user_id", "embedded"),
        Index("ix_memories_user_thread", "user_id", "thread_id", "id"),  # neighbour turns
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="turn")  # turn | fact | summary | note
    thread_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    turn_id: Mapped[int | None] = mapped_column(
        ForeignKey("turns.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    text: Mapped[str] = mapped_column(Text)
    # When the remembered thing happened (a turn's time; a session date on import).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    embedded: Mapped[bool] = mapped_column(default=False)
    embedding: Mapped[np.ndarray | None] = mapped_column(Embedding, nullable=True)
    # Facts: what they are about and when they held (a newer fact closes an older one).
    subject: Mapped[str | None] = mapped_column(String(200), nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # summaries, facts
    # Fact extraction from a turn: None (not asked), pending, done or failed (+ the error).
    facts_status: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    facts_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MemoryEpoch(Base):
    """Change counters of a user's memories, checked by in-process indexes:
    ``epoch`` moves on every change, ``reset_epoch`` only when memories are
    edited or deleted (then an index reloads instead of appending)."""

    __tablename__ = "memory_epochs"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    reset_epoch: Mapped[int] = mapped_column(Integer, default=0)


class ForgottenTurn(Base):
    """A turn whose memory the user forgot: the start-up repair must not recreate it."""

    __tablename__ = "forgotten_turns"

    turn_id: Mapped[int] = mapped_column(
        ForeignKey("turns.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
