"""Job runs, each job's state (paused, its memo between runs) and shared user activity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class JobRun(Base):
    """One run of a named job; ``id`` is its DBOS workflow id."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_name_started", "name", "started_at"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # schedule | idle | manual
    trigger: Mapped[str] = mapped_column(String(16))
    # running | succeeded | failed | cancelled | paused | yielded (stopped for a user)
    state: Mapped[str] = mapped_column(String(16))
    steps: Mapped[int] = mapped_column(default=0)
    progress: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0)
    energy_wh: Mapped[float] = mapped_column(Float, default=0.0)
    energy_method: Mapped[str] = mapped_column(String(16), default="estimate")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobState(Base):
    """Per job: paused by an admin, and a small memo a job keeps between its runs."""

    __tablename__ = "job_states"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    memo: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """The last user activity any process saw (the idle gate reads it)."""

    __tablename__ = "activity"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
