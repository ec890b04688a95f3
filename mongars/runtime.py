"""The resources one running app owns; built and disposed by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mongars.auth.ratelimit import LoginLimiter
from mongars.llm.base import LLMProvider
from mongars.observability.metrics import Metrics
from mongars.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    secret: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    llm: LLMProvider
    metrics: Metrics
    login_limiter: LoginLimiter
    # One-time token for creating the first admin; None once users exist.
    setup_token: str | None = None
