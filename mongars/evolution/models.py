"""Every decision of the evolution engine: its inputs, the rule that fired, the action
and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class EvolutionDecision(Base):
    __tablename__ = "evolution_decisions"
    __table_args__ = (Index("ix_evolution_decisions_rule_created", "rule", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    rule: Mapped[str] = mapped_column(String(64))
    # The figures the rule read (JSON-able numbers and labels).
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # schedule_training | schedule_consolidation | rollback_adapter | pause_background
    # | refuse_training
    action: Mapped[str] = mapped_column(String(64))
    # taken | awaiting_approval | approved | rejected | failed | refused
    status: Mapped[str] = mapped_column(String(24), index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
