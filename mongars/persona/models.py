"""The per-user profile table: explicit preferences plus measured style."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class Profile(Base):
    """One row per user; a NULL preference means "not set" (inferred style may apply)."""

    __tablename__ = "profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    persona: Mapped[str | None] = mapped_column(Text, nullable=True)  # the user's instructions
    tone: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verbosity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    emoji: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # May this user's conversations train the model? NULL: the server's default
    # (MONGARS_TRAINING__DEFAULT_CONSENT, false unless an operator says otherwise).
    allow_training: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Running style values (mongars.persona.style.Style.to_json).
    style: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    messages_observed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
