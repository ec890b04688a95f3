"""The resources one running app owns; built and disposed by the lifespan."""

from __future__ import annotations

import math
import time
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


class LoadMeter:
    """Generations in progress as a decaying time average (time constant ``tau_s``).

    A node that answers back to back still has short gaps between answers (saving the
    turn, recalling memory); a snapshot taken in a gap says "idle". Peers choose where
    to send work from this figure (max of now and the average), so it must not."""

    def __init__(self, tau_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.tau_s = tau_s
        self.clock = clock
        self._average = 0.0
        self._value = 0  # generations in progress since ``_at``
        self._at = clock()

    def average(self) -> float:
        now = self.clock()
        decay = math.exp(-max(0.0, now - self._at) / self.tau_s)
        return self._value + (self._average - self._value) * decay

    def set(self, value: int) -> None:
        self._average = self.average()
        self._at = self.clock()
        self._value = value


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
    load: LoadMeter = field(default_factory=LoadMeter)  # ``generating``, averaged
    # Called with True when this process starts generating, False when it stops.
    busy_hooks: list[Callable[[bool], None]] = field(default_factory=list)
    _hub: GenerationHub | None = None

    def generation_started(self) -> None:
        self.generating += 1
        self.load.set(self.generating)
        if self.generating == 1:
            for hook in self.busy_hooks:
                hook(True)

    def generation_ended(self) -> None:
        self.generating -= 1
        self.generations_done += 1
        self.load.set(self.generating)
        if self.generating == 0:
            for hook in self.busy_hooks:
                hook(False)

    @property
    def hub(self) -> GenerationHub:
        """Background generations (created once the runtime exists: it needs it)."""
        assert self._hub is not None, "runtime not started"
        return self._hub
