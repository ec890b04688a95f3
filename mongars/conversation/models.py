"""Thread and turn tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class Thread(Base):
    """A conversation; the v1 chat ``session_id`` names one."""

    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Turn(Base):
    """One user message and the model's answer, with how it was produced."""

    __tablename__ = "turns"
    __table_args__ = (
        Index("ix_turns_user_created", "user_id", "created_at"),
        Index("ix_turns_thread_created", "thread_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(Text)  # exactly as sent
    response: Mapped[str] = mapped_column(Text)
    # completed | cancelled | superseded (replaced by a regenerated answer)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    # One generation stores at most one turn, whichever process or client finishes it.
    generation_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    stage_ms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What shaped the answer (contributors' records: directives, budgets, sources).
    steering: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    memory_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Document passages the answer was given, numbered as in the prompt ([1], [2]...).
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    image_caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The adapter version that produced the answer (docs/adapters.md); null: the base model.
    adapter_version: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # The paired node that generated the answer when it was delegated (docs/peers.md).
    answered_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
