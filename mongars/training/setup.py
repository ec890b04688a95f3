"""Building the learning loop for a running app (the lifespan) or a CLI command."""

from __future__ import annotations

import asyncio
import contextlib
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

RETENTION_INTERVAL_S = 3600.0


@dataclass
class TrainingSystem:
    datasets: DatasetService
    runs: RunService
    supervisor: RunSupervisor
    retention: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self.retention is not None:
            self.retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.retention
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
    """The server's: follows runs a previous start left running, enforces retention."""
    system = build_training(sessions, settings, secret, metrics, busy)
    await system.supervisor.recover()
    system.retention = asyncio.create_task(
        _retention_loop(system.datasets), name="training-retention"
    )
    return system


async def _retention_loop(datasets: DatasetService) -> None:
    while True:
        try:
            deleted = await datasets.enforce_retention()
            if deleted:
                log.info("training datasets past retention deleted: %d", deleted)
        except Exception:  # a failed pass must not stop later ones
            log.exception("training dataset retention pass failed")
        await asyncio.sleep(RETENTION_INTERVAL_S)
