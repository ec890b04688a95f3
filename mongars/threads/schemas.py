"""Request and response bodies for the Threads API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from mongars.feedback.schemas import FeedbackBrief

TITLE_MAX = 200


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Trimmed, then 0..200 characters.
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=TITLE_MAX),
    AfterValidator(_no_nul),
]


class ThreadCreate(BaseModel):
    title: Title | None = None


class ThreadRename(BaseModel):
    title: Title


class ThreadOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    turn_id: int
    query: str
    response: str
    status: str
    created_at: datetime
    model: str
    confidence: float | None
    prompt_tokens: int
    completion_tokens: int
    # Document passages the answer cites, numbered as in the answer ([1], [2]...).
    citations: list[dict[str, Any]] = []
    feedback: FeedbackBrief | None = Field(
        default=None, description="Your rating and suggested answer, if you gave any."
    )
    adapter_version: int | None = Field(
        default=None, description="The adapter version that answered; null: the base model."
    )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class ThreadHit(ThreadOut):
    snippet: str


class SearchPage(BaseModel):
    items: list[ThreadHit]
    next_cursor: str | None
