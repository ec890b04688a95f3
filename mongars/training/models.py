"""Training datasets (with the turns each record came from) and training runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class Dataset(Base):
    """A curated dataset; its files live in ``<data_dir>/datasets/<id>/``."""

    __tablename__ = "training_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # approved | quarantined (a governance violation: never trained on)
    status: Mapped[str] = mapped_column(String(16))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    records: Mapped[int] = mapped_column(Integer, default=0)
    held_out: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    scrubber_version: Mapped[str] = mapped_column(String(32), default="")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetRecord(Base):
    """Where one record came from, so that forgetting a turn flags the dataset.

    No foreign key to ``turns``: the row must outlive the turn it names."""

    __tablename__ = "training_dataset_records"
    __table_args__ = (Index("ix_training_dataset_records_turn", "turn_id"),)

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("training_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    turn_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)


class TrainingRun(Base):
    """One training run; its files live in ``<data_dir>/training/runs/<id>/``."""

    __tablename__ = "training_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # No foreign key either: a run's record (and adapter) outlives a deleted dataset.
    dataset_id: Mapped[str] = mapped_column(String(32), index=True)
    dataset_sha256: Mapped[str] = mapped_column(String(64), default="")
    objective: Mapped[str] = mapped_column(String(8))  # sft | mntp
    # queued | running | pausing | paused | completed | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
