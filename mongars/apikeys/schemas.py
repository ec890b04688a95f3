"""API key request and response bodies. The secret key appears only in :class:`ApiKeyCreated`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="a label, e.g. 'Open WebUI'")
    use_history: bool = True
    use_memory: bool = True
    use_persona: bool = True

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be empty or only whitespace")
        if any(not ch.isprintable() for ch in value):
            raise ValueError("name must not contain control characters")
        return value


class ApiKeyUpdate(BaseModel):
    """Fields left out keep their value."""

    use_history: bool | None = None
    use_memory: bool | None = None
    use_persona: bool | None = None


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the first characters of the key, to tell keys apart")
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    use_history: bool
    use_memory: bool
    use_persona: bool


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the secret key; shown in this response only, never again")
