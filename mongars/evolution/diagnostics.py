"""What the evolution engine measures, every run, from data that exists: answer
latency per model, turn outcomes and provider breakers, CPU pressure, this process's
memory, free disk, background jobs' energy, each adapter version's thumbs-down rate
with its interval, and new consented feedback. Every figure is JSON-able: a decision
stores the ones its rule read."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.adapters.repository import AdapterRepository
from mongars.adapters.stats import wilson
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.evolution.repository import EvolutionRepository
from mongars.llm.base import LLMProvider
from mongars.persona.repository import ProfileRepository
from mongars.scheduler.pressure import cpu_pressure
from mongars.scheduler.repository import SchedulerRepository
from mongars.settings import Settings
from mongars.training.repository import TrainingRepository

if TYPE_CHECKING:
    from mongars.adapters.registry import AdapterRegistry
    from mongars.memory.setup import MemorySystem
    from mongars.scheduler.admin import JobsAdmin

CONSOLIDATE_EVERY = timedelta(hours=24)  # as memory.tasks: the consolidation pass is daily
ENERGY_WINDOW = timedelta(hours=24)


class Host(Protocol):
    """What the engine reads: the server's Runtime, or the CLI's few parts."""

    @property
    def settings(self) -> Settings: ...
    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def llm(self) -> LLMProvider | None: ...
    @property
    def adapters(self) -> AdapterRegistry | None: ...
    @property
    def scheduler(self) -> JobsAdmin | None: ...
    @property
    def memory(self) -> MemorySystem | None: ...


@dataclass
class Diagnostics:
    at: str
    window_h: float
    # Per model: turns, p50 and p95 latency (ms) of completed turns in the window.
    latency: list[dict[str, Any]] = field(default_factory=list)
    # Turns in the window by status (failed answers store no turn: see endpoints).
    turns: dict[str, int] = field(default_factory=dict)
    cancelled_rate: float | None = None
    # HTTP providers' circuit breakers (empty for the embedded model).
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    endpoints_open: int = 0
    cpu_pressure: float = 0.0
    cpu_method: str = "none"  # psi | loadavg | none
    cpu_limit: float = 0.0
    rss_mb: float = 0.0
    disk_free_mb: float = 0.0
    # Per job, over the last 24 h: runs, CPU seconds, energy (Wh); and the sum.
    energy: dict[str, dict[str, Any]] = field(default_factory=dict)
    energy_wh_24h: float = 0.0
    energy_budget_wh: float = 0.0
    # Per adapter version (null: the base model): turns, thumbs down, rate, 95 % interval.
    adapters: list[dict[str, Any]] = field(default_factory=list)
    active_adapter: int | None = None
    # The version a rollback returns to (null: the base model); only with an active one.
    predecessor: int | None = None
    # Rated-up or corrected turns of consenting users since the newest dataset.
    new_feedback: int = 0
    scheduler_on: bool = False
    # Job runs queued or running now; idle-only jobs among them.
    active_jobs: list[str] = field(default_factory=list)
    background_running: list[str] = field(default_factory=list)
    # Jobs paused by this engine for CPU pressure and still paused.
    engine_paused: list[str] = field(default_factory=list)
    memory_on: bool = False
    memory_pending: bool | None = None  # memories or turns waiting to be indexed
    consolidation_due: bool = False
    consolidation_last_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


def rss_mb() -> float:
    """This process's resident memory now (/proc), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def disk_free_mb(path: Any) -> float:
    try:
        return round(shutil.disk_usage(path).free / 2**20, 1)
    except OSError:
        return 0.0


async def gather(host: Host, paused_by_engine: list[str]) -> Diagnostics:
    settings = host.settings
    cfg = settings.evolution
    now = utcnow()
    since = now - timedelta(hours=cfg.window_h)
    pressure = cpu_pressure()
    d = Diagnostics(
        at=now.isoformat(),
        window_h=cfg.window_h,
        cpu_pressure=round(pressure.value, 3),
        cpu_method=pressure.method,
        cpu_limit=cfg.max_cpu_pressure if pressure.method == "psi" else cfg.max_load_per_core,
        rss_mb=rss_mb(),
        disk_free_mb=await asyncio.to_thread(disk_free_mb, settings.data_dir),
        energy_budget_wh=cfg.energy_budget_wh_per_day,
        scheduler_on=host.scheduler is not None,
        memory_on=settings.memory.enabled,
    )
    if host.llm is not None:
        d.endpoints = host.llm.endpoint_states()
        d.endpoints_open = sum(1 for e in d.endpoints if e.get("state") != "closed")
    async with unit_of_work(host.sessions) as session:
        await _turns(d, EvolutionRepository(session), since, settings.llm.provider)
        await _adapters(d, AdapterRepository(session), since)
        await _feedback(d, session, settings.training.default_consent)
        await _jobs(d, SchedulerRepository(session), EvolutionRepository(session), now, host)
    d.engine_paused = [n for n in paused_by_engine if n in d.engine_paused]
    if host.memory is not None:
        d.memory_pending = await host.memory.service.has_pending()
    return d


async def _turns(d: Diagnostics, repo: EvolutionRepository, since: datetime, provider: str) -> None:
    for model, values in sorted((await repo.turn_latencies(since)).items()):
        d.latency.append(
            {
                "provider": provider,
                "model": model,
                "turns": len(values),
                "p50_ms": percentile(values, 50),
                "p95_ms": percentile(values, 95),
            }
        )
    d.turns = await repo.turn_statuses(since)
    total = sum(d.turns.values())
    d.cancelled_rate = round(d.turns.get("cancelled", 0) / total, 4) if total else None


async def _adapters(d: Diagnostics, repo: AdapterRepository, since: datetime) -> None:
    for f in sorted(await repo.turn_figures(since), key=lambda f: f.version or 0):
        low, high = wilson(f.down, f.turns)
        d.adapters.append(
            {
                "version": f.version,
                "turns": f.turns,
                "thumbs_down": f.down,
                "thumbs_up": f.up,
                "thumbs_down_rate": round(f.down / f.turns, 4) if f.turns else None,
                "thumbs_down_ci": [round(low, 4), round(high, 4)],
            }
        )
    pointer = await repo.pointer()
    d.active_adapter = pointer.active_id
    if pointer.active_id is not None:
        activation = await repo.last_activation_of(pointer.active_id)
        d.predecessor = activation.from_id if activation is not None else None


async def _feedback(d: Diagnostics, session: AsyncSession, default_consent: bool) -> None:
    """As the training.curate job counts it (mongars.training.tasks.new_feedback)."""
    repo = TrainingRepository(session)
    users = await repo.feedback_users_since(await repo.newest_dataset_at())
    consent = await ProfileRepository(session).training_consent(sorted(set(users)), default_consent)
    d.new_feedback = sum(1 for u in users if consent.get(u, False))


async def _jobs(
    d: Diagnostics,
    jobs: SchedulerRepository,
    repo: EvolutionRepository,
    now: datetime,
    host: Host,
) -> None:
    d.energy = {
        name: {**v, "cpu_s": round(v["cpu_s"], 3), "energy_wh": round(v["energy_wh"], 6)}
        for name, v in (await repo.job_energy(now - ENERGY_WINDOW)).items()
    }
    d.energy_wh_24h = round(sum(v["energy_wh"] for v in d.energy.values()), 6)
    d.active_jobs = await repo.active_jobs()
    specs = host.scheduler.specs if host.scheduler is not None else {}
    d.background_running = [n for n in d.active_jobs if n in specs and specs[n].idle_only]
    states = await jobs.states()
    d.engine_paused = [n for n, s in states.items() if s.paused]  # filtered by the caller
    consolidate = states.get("memory.consolidate")
    memo = consolidate.memo if consolidate is not None else {}
    last = memo.get("last_at")
    d.consolidation_last_at = last
    d.consolidation_due = d.memory_on and (
        "phase" in memo or last is None or now - datetime.fromisoformat(last) >= CONSOLIDATE_EVERY
    )
