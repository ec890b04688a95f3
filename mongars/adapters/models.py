"""Adapter versions, the single pointer to what serves, and the pointer's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class AdapterVersion(Base):
    """One trained LoRA adapter; its file is ``<data_dir>/adapters/<sha256>/adapter.gguf``."""

    __tablename__ = "adapter_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    # No foreign keys: a version outlives its run and dataset (retention deletes those).
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    dataset_id: Mapped[str] = mapped_column(String(32))
    dataset_sha256: Mapped[str] = mapped_column(String(64), default="")
    base_model: Mapped[str] = mapped_column(String(200))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Why a human must approve it (empty: it passed every gate).
    gate: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # candidate | approved | rejected | active | retired (was active, still approved)
    # | pruned (its file deleted by an explicit prune; the row and history stay)
    state: Mapped[str] = mapped_column(String(16), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdapterPointer(Base):
    """The one row that says what serves: the active version (none: the base model)
    and an optional canary answering a share of turns. ``generation`` grows on every
    change, so that serving processes notice one with a cheap read."""

    __tablename__ = "adapter_pointer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    active_id: Mapped[int | None] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="SET NULL"), nullable=True
    )
    canary_id: Mapped[int | None] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="SET NULL"), nullable=True
    )
    canary_share: Mapped[float] = mapped_column(Float, default=0.0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdapterChange(Base):
    """Every move of the pointer: what was active before and after, who, and why."""

    __tablename__ = "adapter_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # activate | rollback | deactivate | canary_start | canary_stop
    action: Mapped[str] = mapped_column(String(16))
    from_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
