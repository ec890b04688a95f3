"""The resources one running app owns; built and disposed by the lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mongars.auth.ratelimit import LoginLimiter, UserLimits
from mongars.llm.base import LLMProvider
from mongars.observability.metrics import Metrics
from mongars.realtime.bus import EventBus
from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars.adapters.registry import AdapterRegistry
    from mongars.conversation.generations import GenerationHub
    from mongars.conversation.plan import TurnContributor
    from mongars.evolution.service import EvolutionEngine
    from mongars.memory.setup import MemorySystem
    from mongars.peers.service import PeerMesh
    from mongars.research.setup import DocumentSystem
    from mongars.scheduler.service import Scheduler
    from mongars.secrets import SecretsRefresher
    from mongars.training.setup import TrainingSystem


@dataclass
class Runtime:
    settings: Settings
    secret: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    llm: LLMProvider
    metrics: Metrics
    login_limiter: LoginLimiter
    rate_limits: UserLimits  # chat, uploads, training: per user (mongars/rate_limits.py)
    bus: EventBus
    # One-time token for creating the first admin; None once users exist.
    setup_token: str | None = None
    # Features that shape each turn (persona, memory...), in order.
    contributors: list[TurnContributor] = field(default_factory=list)
    memory: MemorySystem | None = None
    documents: DocumentSystem | None = None
    training: TrainingSystem | None = None
    scheduler: Scheduler | None = None
    adapters: AdapterRegistry | None = None
    evolution: EvolutionEngine | None = None
    peers: PeerMesh | None = None
    secrets: SecretsRefresher | None = None  # MONGARS_SECRETS__BACKEND=vault
    # Answers being generated now in this process (the training worker yields to them).
    generating: int = 0
    generations_done: int = 0  # since start (peer telemetry's tasks_processed)
    # Called with True when this process starts generating, False when it stops.
    busy_hooks: list[Callable[[bool], None]] = field(default_factory=list)
    _hub: GenerationHub | None = None

    def generation_started(self) -> None:
        self.generating += 1
        if self.generating == 1:
            for hook in self.busy_hooks:
                hook(True)

    def generation_ended(self) -> None:
        self.generating -= 1
        self.generations_done += 1
        if self.generating == 0:
            for hook in self.busy_hooks:
                hook(False)

    @property
    def hub(self) -> GenerationHub:
        """Background generations (created once the runtime exists: it needs it)."""
        assert self._hub is not None, "runtime not started"
        return self._hub
