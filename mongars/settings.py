"""One validated Settings object (env prefix ``MONGARS_``, nested groups with ``__``).

Reading settings has no side effects; :func:`ensure_secret_key` is the single
place that may create a file (the generated secret in the data directory) and
is called by the app factory and the CLI, never at import.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "test"}
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


class Environment(StrEnum):
    development = "development"
    production = "production"


class RegistrationPolicy(StrEnum):
    admin_only = "admin-only"
    open = "open"
    closed = "closed"


class LLMSettings(BaseModel):
    """Which model answers, and how."""

    provider: Literal["llamacpp", "ollama", "openai"] = "llamacpp"
    # llamacpp: path to a GGUF; empty means the embedded Gemma 3 270M, assembled
    # into <data_dir>/models on first use.
    model_path: str = ""
    # ollama / openai: model name on the server, and where the server is.
    model: str = ""
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    context_window: int = Field(default=4096, ge=256, le=131072)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    threads: int = Field(default=0, ge=0, description="0 = all cores")
    timeout_s: float = Field(default=120.0, gt=0)
    system_prompt: str = (
        "The following is a conversation between a user and monGARS, a helpful, "
        "honest and concise AI assistant."
    )


class AuthSettings(BaseModel):
    token_ttl_minutes: int = Field(default=60 * 24, ge=1)
    registration: RegistrationPolicy = RegistrationPolicy.admin_only
    # Login attempts, per account and per client address (limits' notation).
    login_limit_per_account: str = "5/minute"
    login_limit_per_address: str = "20/minute"
    min_password_length: int = Field(default=8, ge=1)


class ChatSettings(BaseModel):
    max_message_chars: int = Field(default=8000, ge=1)
    history_turns: int = Field(default=20, ge=0, description="turns loaded before trimming")
    # Speaking-rate model for speech_turn (docs/speech.md): ~4 syllables/s is a
    # calm conversational rate (about 150 English words a minute).
    syllables_per_second: float = Field(default=4.0, gt=0)


class RealtimeSettings(BaseModel):
    # Browser origins allowed on /ws/chat besides the server's own (scheme://host[:port]).
    allowed_origins: list[str] = []
    ticket_ttl_s: int = Field(default=60, ge=5, le=60)
    heartbeat_s: float = Field(default=20.0, gt=0)
    heartbeat_timeout_s: float = Field(default=60.0, gt=0)
    queue_size: int = Field(default=2000, ge=10, description="events buffered per socket")
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    chat_rate_limit: str = "30/minute"  # chat.send / chat.regenerate per user


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MONGARS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Environment = Environment.development
    data_dir: Path = Path("data")
    database_url: str = ""
    # Redis for the event bus (pub/sub fan-out, Streams replay) across API processes.
    redis_url: str = ""
    # Apply migrations at start-up (fine for one process; run `mongars db upgrade`
    # once and set this false when several API processes share a database).
    db_auto_upgrade: bool = True
    secret_key: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger bodies get 413")

    llm: LLMSettings = LLMSettings()
    auth: AuthSettings = AuthSettings()
    chat: ChatSettings = ChatSettings()
    realtime: RealtimeSettings = RealtimeSettings()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        key = self.secret_key.get_secret_value()
        if self.env is Environment.production and key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "MONGARS_SECRET_KEY must be set to a real secret in production "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if self.env is Environment.production and len(key) < 32:
            raise ValueError("MONGARS_SECRET_KEY must be at least 32 characters in production")
        if self.llm.max_tokens >= self.llm.context_window:
            raise ValueError("llm.max_tokens must be smaller than llm.context_window")
        if self.llm.provider in ("ollama", "openai") and not self.llm.base_url:
            raise ValueError(f"MONGARS_LLM__BASE_URL is required for provider {self.llm.provider}")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mongars.db').resolve()}"


def ensure_secret_key(settings: Settings) -> str:
    """Return the signing secret, generating and storing one (mode 0600) if unset.

    The embedded default needs no configuration, so the first start writes a
    random secret into the data directory and later starts reuse it.
    """
    key = settings.secret_key.get_secret_value()
    if key:
        return key
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
