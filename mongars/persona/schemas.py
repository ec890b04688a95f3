"""Profile bodies for /api/v1/profile."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mongars.persona.lexicon import LANGUAGES

Tone = Literal["formal", "neutral", "casual", "friendly"]
Verbosity = Literal["terse", "normal", "detailed"]
PERSONA_MAX_CHARS = 2000


class Preferences(BaseModel):
    """Explicit preferences; null (or absent) means "not set": measured style may apply."""

    model_config = ConfigDict(extra="forbid")

    persona: str | None = Field(
        default=None,
        max_length=PERSONA_MAX_CHARS,
        description="Your own instructions for the assistant, added to its system prompt.",
    )
    tone: Tone | None = None
    verbosity: Verbosity | None = None
    language: str | None = Field(
        default=None, description="ISO 639-1 code the answers should be in, e.g. 'fr'."
    )
    emoji: bool | None = Field(default=None, description="Whether answers may use emoji.")

    @field_validator("persona")
    @classmethod
    def _persona(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("persona must not contain NUL characters")
        return value.strip() or None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().lower()
        if code not in LANGUAGES:
            raise ValueError(f"unsupported language {value!r}; use one of: {', '.join(LANGUAGES)}")
        return code


class ProfileUpdate(Preferences):
    """PUT body: the explicit preferences, and optionally the training consent."""

    allow_training: bool | None = Field(
        default=None,
        description="May your conversations (curated and scrubbed of personal data) train "
        "the model? null: the server's default. Left out: unchanged.",
    )


class MeasuredValue(BaseModel):
    value: float
    observations: int = Field(description="Messages this value was measured on.")


class MeasuredLanguage(BaseModel):
    value: str
    share: float = Field(description="Share of recent messages in this language (EMA).")
    observations: int = Field(description="Messages whose language could be detected.")


class InferredStyle(BaseModel):
    messages_observed: int
    confidence: float = Field(description="n / (n + min_observations); values apply from 0.5.")
    words_per_message: MeasuredValue | None = None
    sentence_length: MeasuredValue | None = None
    formality: MeasuredValue | None = Field(default=None, description="0 casual .. 1 formal")
    question_rate: MeasuredValue | None = None
    exclamation_rate: MeasuredValue | None = None
    emoji_rate: MeasuredValue | None = None
    technical_share: MeasuredValue | None = None
    language: MeasuredLanguage | None = None


class ProfileOut(BaseModel):
    explicit: Preferences
    inferred: InferredStyle
    steering: dict[str, Any] = Field(
        description="What the next turn would apply: directives and budgets, with their sources."
    )
    updated_at: str | None = None
    allow_training: bool | None = Field(
        default=None,
        description="Your choice on training: true, false, or null (the server's default).",
    )
    allow_training_effective: bool = Field(
        default=False,
        description="Whether your conversations may train the model: your choice, or the "
        "server's default (MONGARS_TRAINING__DEFAULT_CONSENT) when you made none.",
    )
