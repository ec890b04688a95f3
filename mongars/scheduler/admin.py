"""What admins do with jobs, from the API, the console or the CLI: list them and their
runs, run one now, pause, resume, cancel. Pause and cancel are rows in the database
(a running job reads them between steps) and a run asked by hand is queued in DBOS,
so all of it works from any process, the leader's or not, and from `mongars jobs`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from croniter import croniter
from dbos import DBOSClient
from dbos._serialization import DBOSPortableJSONSerializer
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars import __version__
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import Conflict, NotFound
from mongars.scheduler import workflows
from mongars.scheduler.idle import IdleGate
from mongars.scheduler.jobs import JobSpec
from mongars.scheduler.models import JobRun
from mongars.scheduler.repository import SchedulerRepository
from mongars.scheduler.schemas import JobList, JobOut, JobRunOut, JobRunPage
from mongars.settings import Settings
from mongars.threads.service import decode_cursor, encode_cursor

APP_NAME = "mongars"
CURSOR_KIND = "jobrun"


def system_database_url(settings: Settings) -> str:
    """DBOS's own tables: a SQLite file beside the data, or schema ``dbos`` of our
    PostgreSQL database (through psycopg, which DBOS uses)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{(settings.data_dir / 'scheduler.sqlite').resolve()}"
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def cron_of(spec: JobSpec, settings: Settings) -> str | None:
    return settings.scheduler.schedules.get(spec.name, spec.schedule)


class JobsAdmin:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        specs: list[JobSpec],
        gate: IdleGate,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.specs = {s.name: s for s in specs}
        for spec in specs:  # a bad cron in settings fails the start, not a job at 3 a.m.
            cron = cron_of(spec, settings)
            if cron is not None and not croniter.is_valid(cron, second_at_beginning=True):
                raise ValueError(f"job {spec.name}: invalid cron schedule {cron!r}")
        self.gate = gate
        self.leader = False  # whether this process runs the jobs (the Scheduler says)
        self._client: DBOSClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.destroy)
            self._client = None

    # -- what admins do -----------------------------------------------------------------

    def _spec(self, name: str) -> JobSpec:
        spec = self.specs.get(name)
        if spec is None:
            raise NotFound(f"no job named {name!r}; GET /api/v1/jobs lists them")
        return spec

    async def jobs(self) -> JobList:
        gate = await self.gate.check()
        async with unit_of_work(self.sessions) as session:
            repo = SchedulerRepository(session)
            last = await repo.last_runs()
            states = await repo.states()
            running = {r.name for r in await repo.running()}
        items = []
        now = datetime.now(UTC)
        for spec in sorted(self.specs.values(), key=lambda s: (s.priority, s.name)):
            cron = cron_of(spec, self.settings)
            state = states.get(spec.name)
            if spec.name in self.settings.scheduler.disabled:
                status = "disabled"
            elif state is not None and state.paused:
                status = "paused"
            elif spec.name in running:
                status = "running"
            else:
                status = "idle"
            next_run = (
                croniter(cron, now, second_at_beginning=True).get_next(datetime)
                if cron is not None and status not in ("disabled", "paused")
                else None
            )
            items.append(
                JobOut(
                    name=spec.name,
                    description=spec.description,
                    schedule=cron,
                    idle_only=spec.idle_only,
                    state=status,  # type: ignore[arg-type]
                    last_run=run_out(last[spec.name]) if spec.name in last else None,
                    next_run=next_run,
                )
            )
        return JobList(items=items, leader=self.leader, idle=gate.idle, idle_reason=gate.reason)

    async def runs(self, name: str, cursor: str | None, limit: int) -> JobRunPage:
        self._spec(name)
        before = decode_cursor(CURSOR_KIND, cursor) if cursor else None
        async with unit_of_work(self.sessions) as session:
            rows = await SchedulerRepository(session).runs(name, before, limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return JobRunPage(
            items=[run_out(r) for r in page],
            next_cursor=encode_cursor(CURSOR_KIND, page[-1].started_at, page[-1].id)
            if more
            else None,
        )

    async def trigger(self, name: str, actor: str) -> JobRunOut:
        """Queue a run now (any process; the leader runs it). Idle-only jobs run too:
        an admin's run does not wait for the machine to be idle."""
        self._spec(name)
        if name in self.settings.scheduler.disabled:
            raise Conflict(f"job {name} is disabled (MONGARS_SCHEDULER__DISABLED)")
        run_id = f"manual-{name}-{uuid.uuid4().hex[:12]}"
        async with unit_of_work(self.sessions) as session:
            repo = SchedulerRepository(session)
            if (await repo.state(name)).paused:
                raise Conflict(f"job {name} is paused: resume it first")
            if await repo.running(name) or await repo.queued(name):
                raise Conflict(f"job {name} is already running or queued")
            await repo.add_queued(run_id, name)
            await repo.audit(actor, "job.run", name, run_id)
        await asyncio.to_thread(self._enqueue, run_id, name)
        return await self.run(run_id)

    def _enqueue(self, run_id: str, name: str) -> None:
        if self._client is None:
            self._client = DBOSClient(
                system_database_url=system_database_url(self.settings),
                serializer=DBOSPortableJSONSerializer(),
                application_name=APP_NAME,
            )
        self._client.enqueue(
            {
                "queue_name": workflows.MANUAL_QUEUE,
                "workflow_name": workflows.JOB_WORKFLOW,
                "workflow_id": run_id,
                "app_version": __version__,
            },
            name,
            "manual",
        )

    async def run(self, run_id: str) -> JobRunOut:
        async with unit_of_work(self.sessions) as session:
            row = await SchedulerRepository(session).run(run_id)
        if row is None:
            raise NotFound(f"no job run {run_id!r}")
        return run_out(row)

    async def pause(self, name: str, actor: str) -> JobOut:
        """The job's schedule stops firing; a running run stops at its next step."""
        return await self._set_paused(name, True, actor)

    async def resume(self, name: str, actor: str) -> JobOut:
        return await self._set_paused(name, False, actor)

    async def _set_paused(self, name: str, paused: bool, actor: str) -> JobOut:
        self._spec(name)
        async with unit_of_work(self.sessions) as session:
            repo = SchedulerRepository(session)
            await repo.set_paused(name, paused)
            await repo.audit(actor, "job.pause" if paused else "job.resume", name)
        return await self._job(name)

    async def cancel(self, name: str, actor: str) -> JobOut:
        """A running run stops at its next step (training: at its next optimizer step,
        then checkpoints); a queued one never starts."""
        self._spec(name)
        async with unit_of_work(self.sessions) as session:
            repo = SchedulerRepository(session)
            running, queued = await repo.running(name), await repo.queued(name)
            if not running and not queued:
                raise Conflict(f"job {name} has no run to cancel")
            for run in running:
                await repo.update_run(run.id, state="cancelling")
            for run in queued:
                await repo.update_run(run.id, state="cancelled", finished_at=utcnow())
            await repo.audit(actor, "job.cancel", name)
        return await self._job(name)

    async def _job(self, name: str) -> JobOut:
        return next(j for j in (await self.jobs()).items if j.name == name)


def run_out(run: JobRun) -> JobRunOut:
    duration = (
        (run.finished_at - run.started_at).total_seconds() if run.finished_at is not None else None
    )
    return JobRunOut(
        id=run.id,
        name=run.name,
        trigger=run.trigger,  # type: ignore[arg-type]
        state=run.state,  # type: ignore[arg-type]
        steps=run.steps,
        progress=run.progress,
        result=run.result,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=duration,
        cpu_s=round(run.cpu_s, 3),
        energy_wh=round(run.energy_wh, 6),
        energy_method=run.energy_method,  # type: ignore[arg-type]
    )
