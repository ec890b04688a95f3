"""The scheduler of one app: leadership and DBOS's lifecycle (what admins do with jobs
is :mod:`.admin`).

Every process keeps activity marks and serves the jobs API; one process per deployment
(the leader: :mod:`.leader`) launches DBOS, which fires the cron schedules, runs the idle
cycle and the runs asked by hand, and recovers the runs a crash interrupted. The others
wait to take over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from dbos import DBOS, DBOSConfig
from dbos._serialization import DBOSPortableJSONSerializer

from mongars import __version__
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.runtime import Runtime
from mongars.scheduler import workflows
from mongars.scheduler.admin import APP_NAME, JobsAdmin, cron_of, system_database_url
from mongars.scheduler.energy import EnergyMeter
from mongars.scheduler.host import JobHost
from mongars.scheduler.idle import Activity, IdleGate
from mongars.scheduler.jobs import JobSpec
from mongars.scheduler.leader import LeaderLock
from mongars.scheduler.repository import SchedulerRepository

log = logging.getLogger(__name__)


class Scheduler(JobsAdmin):
    """The server's: :class:`JobsAdmin` plus leadership and DBOS's lifecycle."""

    def __init__(self, runtime: Runtime, specs: list[JobSpec]) -> None:
        cfg = runtime.settings.scheduler
        self.runtime = runtime
        self.activity = Activity(runtime.sessions, cfg.activity_write_s)
        gate = IdleGate(cfg, self.activity, lambda: runtime.generating)
        super().__init__(runtime.sessions, runtime.settings, specs, gate)
        self.host = JobHost(
            runtime,
            self.specs,
            self.gate,
            EnergyMeter(self.settings.training.watts_per_core, cfg.rapl_root),
        )
        self.lock = LeaderLock(runtime.engine, self.settings.data_dir / "scheduler.lock")
        self._takeover: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if not await self._try_lead():
            log.info("scheduler: another process leads; this one takes over if it stops")
            self._takeover = asyncio.create_task(self._wait_to_lead(), name="scheduler-takeover")

    async def stop(self) -> None:
        if self._takeover is not None:
            self._takeover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._takeover
        if self.leader:
            self.host.closing = True  # running steps yield at their next check
            await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=30)
            workflows.bind(None)
            self.leader = False
        await self.lock.release()
        await self.close()

    async def _try_lead(self) -> bool:
        if workflows.bound() is not None:  # DBOS is one per process: another app leads here
            return False
        if not await self.lock.acquire():
            return False
        self.host.loop = asyncio.get_running_loop()
        workflows.bind(self.host)
        try:
            await asyncio.to_thread(self._launch)
        except BaseException:
            workflows.bind(None)
            await self.lock.release()
            raise
        self.leader = True
        await self._close_lost_runs()
        log.info("scheduler: this process leads (%d jobs)", len(self.specs))
        return True

    async def _wait_to_lead(self) -> None:
        while True:
            await asyncio.sleep(self.settings.scheduler.leader_check_s)
            try:
                if await self._try_lead():
                    return
            except Exception:
                log.exception("scheduler: could not take over")

    def _config(self) -> DBOSConfig:
        return {
            "name": APP_NAME,
            "system_database_url": system_database_url(self.settings),
            "serializer": DBOSPortableJSONSerializer(),  # JSON in the database, never pickle
            "executor_id": self.settings.scheduler.executor_id,
            "application_version": __version__,
            "log_level": "WARNING",
            "scheduler_polling_interval_sec": 5.0,
        }

    def _launch(self) -> None:
        """In a thread: DBOS's start is blocking I/O (its tables, recovery)."""
        DBOS(config=self._config())
        DBOS.launch()
        DBOS.register_queue(workflows.MANUAL_QUEUE, worker_concurrency=2)
        schedules: list[Any] = [
            {
                "schedule_name": "sommeil",
                "workflow_fn": workflows.sommeil_cycle,
                "schedule": self.settings.scheduler.cycle_schedule,
                "context": {},
            }
        ]
        for spec in self.specs.values():
            cron = cron_of(spec, self.settings)
            if cron is not None:
                schedules.append(
                    {
                        "schedule_name": spec.name,
                        "workflow_fn": workflows.scheduled_job,
                        "schedule": cron,
                        "context": {"job": spec.name},
                    }
                )
        wanted = {s["schedule_name"] for s in schedules}
        for old in DBOS.list_schedules():  # jobs gone from this version, or made idle-only
            if old["schedule_name"] not in wanted:
                DBOS.delete_schedule(old["schedule_name"])
        DBOS.apply_schedules(schedules)

    async def _close_lost_runs(self) -> None:
        """Rows left ``running`` whose workflow DBOS will not go on with (its records
        were lost, or it ended without reaching our finish step) end as failed; so do
        rows left ``queued`` by a crash between recording a run asked by hand and
        queueing it in DBOS (that request was never answered), which would otherwise
        refuse every later run of the job as "already queued"."""
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            runs = await repo.running() + await repo.queued()
        for run in runs:
            status = await asyncio.to_thread(DBOS.get_workflow_status, run.id)
            if status is None or status.status in ("SUCCESS", "ERROR", "CANCELLED"):
                when = "during this run" if run.state != "queued" else "before it was queued"
                async with unit_of_work(self.runtime.sessions) as session:
                    await SchedulerRepository(session).update_run(
                        run.id,
                        state="failed",
                        error=f"interrupted: the server stopped {when}",
                        finished_at=utcnow(),
                    )
