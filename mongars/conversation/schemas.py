"""Chat and history bodies; v1 contract field names are fixed."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, Field, field_validator

from mongars.conversation.speech import SpeechTurn
from mongars.errors import InvalidInput
from mongars.feedback.schemas import FeedbackBrief

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
# Reserved for the threads the OpenAI-compatible API makes per key, so that no
# user can take one first.
RESERVED_THREAD_PREFIX = "apikey-"
RESERVED_THREAD_IDS = {"search"}  # a route name under /api/v1/threads


def check_new_thread_id(value: str | None) -> str | None:
    if value is not None and value.startswith(RESERVED_THREAD_PREFIX):
        raise ValueError(f"thread ids starting with {RESERVED_THREAD_PREFIX!r} are reserved")
    if value in RESERVED_THREAD_IDS:
        raise ValueError(f"{value!r} is a reserved thread id")
    return value


class MessageIn(BaseModel):
    """A user message: any text but blank, kept exactly as sent."""

    message: str

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must not be empty or only whitespace")
        if "\x00" in value:  # no database stores NUL in text
            raise ValueError("message must not contain NUL characters")
        if not value.isascii():  # a lone surrogate (a JSON escape) cannot be stored either
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ValueError("message must be valid Unicode (no lone surrogates)") from None
        return value


class ChatRequest(MessageIn):
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    image: str | None = Field(
        default=None,
        description="An attached image as base64 (or a data: URL): PNG, JPEG or WebP.",
    )

    _reserved = field_validator("session_id")(check_new_thread_id)

    def image_bytes(self) -> bytes | None:
        """The decoded image; raises ValueError (a 422) on bad base64."""
        if self.image is None:
            return None
        data = self.image.split(",", 1)[1] if self.image.startswith("data:") else self.image
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("image: not valid base64") from exc
        if not raw:
            raise InvalidInput("image: empty")
        return raw


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ChatResponse(BaseModel):
    response: str
    confidence: float | None = Field(
        description="Mean probability the model gave its own tokens, in [0, 1]; "
        "null when the provider exposes no token probabilities."
    )
    processing_time: float
    speech_turn: SpeechTurn
    session_id: str
    turn_id: int
    model: str
    usage: Usage
    finish_reason: str
    memory_ids: list[int] = Field(
        default_factory=list, description="Ids of the memories recalled into the prompt."
    )
    citations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Document passages given to the model, numbered as in its prompt "
        "([n]): n, chunk_id, document_id, collection, path, title, section, page, url, "
        "score, excerpt (docs/research.md).",
    )
    adapter_version: int | None = Field(
        default=None,
        description="The adapter version that produced the answer (docs/adapters.md); "
        "null: the base model.",
    )
    answered_by: str | None = Field(
        default=None,
        description="The paired node that generated the answer when this node handed "
        "the turn over (docs/peers.md); null: this node.",
    )


class HistoryItem(BaseModel):
    user_id: str
    query: str
    response: str
    timestamp: str
    session_id: str
    turn_id: int = Field(description="The turn (rate it at /turns/{turn_id}/feedback).")
    feedback: FeedbackBrief | None = Field(
        default=None, description="Your rating and suggested answer, if you gave any."
    )
    adapter_version: int | None = Field(
        default=None,
        description="The adapter version that produced the answer (docs/adapters.md); "
        "null: the base model.",
    )
