"""The idle gate: heavy jobs run only when no user was active for ``idle_after_s`` in
any process, no answer is being generated here, and CPU pressure is low.

Activity is marked in memory by the request middleware and the WebSocket, and written
to the database at most every ``activity_write_s`` so other processes see it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.engine import unit_of_work
from mongars.scheduler.pressure import PSI_PATH, cpu_pressure
from mongars.scheduler.repository import SchedulerRepository
from mongars.settings import SchedulerSettings

log = logging.getLogger(__name__)

# Requests that are not a user's: probes, metrics scrapes, static files, and the
# scheduler's own pages (an admin watching a job must not stop it).
# Watching background work (jobs, the Evolution Engine's decisions) is not using the
# assistant: it must not keep the machine from being idle.
IGNORED_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/static",
    "/api/v1/jobs",
    "/admin/jobs",
    "/api/v1/evolution",
    "/admin/evolution",
    # Paired nodes' signed requests (telemetry every few seconds) are not a user.
    "/api/v1/peer/mesh",
)


def counts_as_activity(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in IGNORED_PREFIXES)


@dataclass(frozen=True)
class GateState:
    idle: bool
    reason: str  # why not, or "idle"


class Activity:
    """This process's last user activity, shared through the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        write_every_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.write_every_s = write_every_s
        self.clock = clock
        self.last: float = 0.0  # epoch seconds; 0 = none seen here
        self._written: float = 0.0
        self._waiters: set[asyncio.Future[None]] = set()

    def note(self) -> None:
        self.last = self.clock()
        for waiter in self._waiters:  # a job waiting to notice a user wakes at once
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        """Until this process sees activity, or ``timeout_s`` (then the caller polls
        the shared mark for the other processes' activity)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    async def share(self) -> None:
        """Write the mark if it moved and the last write is old enough (best effort)."""
        if self.last <= self._written or self.last - self._written < self.write_every_s:
            return
        at = self.last
        try:
            async with unit_of_work(self.sessions) as session:
                await SchedulerRepository(session).mark_activity(datetime.fromtimestamp(at, UTC))
        except SQLAlchemyError:  # two processes inserted the first mark at once
            log.debug("activity mark not written; the next request retries", exc_info=True)
            return
        self._written = at

    async def latest(self) -> float:
        """The newest activity any process recorded (epoch seconds, 0 = none)."""
        async with unit_of_work(self.sessions) as session:
            shared = await SchedulerRepository(session).last_activity()
        return max(self.last, shared.timestamp() if shared is not None else 0.0)


class IdleGate:
    def __init__(
        self,
        settings: SchedulerSettings,
        activity: Activity,
        generating: Callable[[], int],
        psi_path: Path = PSI_PATH,
    ) -> None:
        self.settings = settings
        self.activity = activity
        self.generating = generating
        self.psi_path = psi_path

    async def check(self) -> GateState:
        if not self.settings.idle_gate:
            return GateState(True, "idle gate off")
        if self.generating() > 0:
            return GateState(False, "an answer is being generated")
        quiet = self.activity.clock() - await self.activity.latest()
        if quiet < self.settings.idle_after_s:
            return GateState(False, f"user activity {quiet:.0f} s ago")
        pressure = cpu_pressure(self.psi_path)
        limit = (
            self.settings.max_cpu_pressure
            if pressure.method == "psi"
            else self.settings.max_load_per_core
        )
        if pressure.value > limit:
            return GateState(False, f"CPU pressure {pressure.value:.2f} ({pressure.method})")
        return GateState(True, "idle")

    def user_came_back(self, since: float) -> bool:
        """Cheap in-process check between steps: activity here after ``since``."""
        return self.settings.idle_gate and (self.activity.last > since or self.generating() > 0)
