"""Building the learning loop for a running app (the lifespan) or a CLI command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.observability.metrics import Metrics
from mongars.settings import Settings
from mongars.training.datasets import DatasetService
from mongars.training.runs import RunService
from mongars.training.supervisor import RunSupervisor

log = logging.getLogger("mongars.training")


@dataclass
class TrainingSystem:
    datasets: DatasetService
    runs: RunService
    supervisor: RunSupervisor

    async def stop(self) -> None:
        await self.supervisor.close()


def build_training(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    secret: str,
    metrics: Metrics | None = None,
    busy: Callable[[], bool] | None = None,
) -> TrainingSystem:
    datasets = DatasetService(sessions, settings, secret)
    supervisor = RunSupervisor(sessions, settings, metrics, busy)
    return TrainingSystem(
        datasets, RunService(sessions, settings, datasets, supervisor), supervisor
    )


async def start_training(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    secret: str,
    metrics: Metrics,
    busy: Callable[[], bool],
) -> TrainingSystem:
    """The server's: follows runs a previous start left running (retention, curation
    and training on idle time are jobs of the scheduler: training/tasks.py)."""
    system = build_training(sessions, settings, secret, metrics, busy)
    await system.supervisor.recover()
    return system
