"""Feedback bodies for /api/v1/conversation/turns/{id}/feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Rating = Literal["up", "down"]
COMMENT_MAX_CHARS = 2000


def clean_text(value: str | None) -> str | None:
    """Trimmed text; empty or whitespace-only is "absent" (None). NUL is refused."""
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value.strip() or None


class FeedbackIn(BaseModel):
    """A rating, a better answer, a comment: at least one of them."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating | None = Field(default=None, description="up, down, or null (no rating).")
    correction: str | None = Field(
        default=None,
        description="A better answer, in your words (at most the chat message limit, "
        "MONGARS_CHAT__MAX_MESSAGE_CHARS).",
    )
    comment: str | None = Field(
        default=None, description=f"Why, in a few words (at most {COMMENT_MAX_CHARS} characters)."
    )

    _clean = field_validator("correction", "comment")(clean_text)

    @field_validator("comment")
    @classmethod
    def _comment_length(cls, value: str | None) -> str | None:
        if value is not None and len(value) > COMMENT_MAX_CHARS:
            raise ValueError(f"must be at most {COMMENT_MAX_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        if self.rating is None and self.correction is None and self.comment is None:
            raise ValueError(
                "give at least one of rating ('up' or 'down'), correction or comment "
                "(to remove your feedback, DELETE it)"
            )
        return self


class FeedbackBrief(BaseModel):
    """The current feedback on a turn, as shown next to it in listings."""

    rating: Rating | None
    correction: str | None


class FeedbackOut(BaseModel):
    turn_id: int
    rating: Rating | None
    correction: str | None
    comment: str | None
    created_at: datetime
    updated_at: datetime
