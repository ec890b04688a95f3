"""Chat and history bodies; v1 contract field names are fixed."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from mongars.conversation.speech import SpeechTurn

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class ChatRequest(BaseModel):
    message: str
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must not be empty or only whitespace")
        return value  # kept exactly as sent


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


class HistoryItem(BaseModel):
    user_id: str
    query: str
    response: str
    timestamp: str
    session_id: str
