"""All SQL of the scheduler: job runs, job states and the shared activity mark."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry
from mongars.db.base import utcnow
from mongars.db.upsert import insert_if_absent
from mongars.scheduler.models import Activity, JobRun, JobState

ACTIVITY_KEY = "user"


class SchedulerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- runs -----------------------------------------------------------------------

    async def run(self, run_id: str) -> JobRun | None:
        return await self.session.get(JobRun, run_id)

    async def begin_run(self, run_id: str, name: str, trigger: str) -> JobRun:
        """Idempotent: a workflow replayed after a crash finds its row again."""
        run = await self.session.get(JobRun, run_id)
        if run is None:
            run = JobRun(id=run_id, name=name, trigger=trigger, state="running", result={})
            self.session.add(run)
        else:
            if run.state == "queued":
                run.state = "running"
                run.started_at = utcnow()
        await self.session.flush()
        return run

    async def update_run(self, run_id: str, **values: Any) -> None:
        await self.session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))

    async def runs(
        self, name: str, before: tuple[datetime, str] | None, limit: int
    ) -> list[JobRun]:
        query = select(JobRun).where(JobRun.name == name)
        if before is not None:
            at, key = before
            query = query.where(
                (JobRun.started_at < at) | ((JobRun.started_at == at) & (JobRun.id < key))
            )
        rows = await self.session.scalars(
            query.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
        )
        return list(rows)

    async def last_runs(self) -> dict[str, JobRun]:
        """Each job's newest run."""
        newest = (
            select(JobRun.name, func.max(JobRun.started_at).label("at"))
            .group_by(JobRun.name)
            .subquery()
        )
        rows = await self.session.scalars(
            select(JobRun).join(
                newest, (JobRun.name == newest.c.name) & (JobRun.started_at == newest.c.at)
            )
        )
        return {r.name: r for r in rows}

    async def running(self, name: str | None = None) -> list[JobRun]:
        """Runs begun and not finished (a cancelling run still runs until its next step)."""
        query = select(JobRun).where(JobRun.state.in_(("running", "cancelling")))
        if name is not None:
            query = query.where(JobRun.name == name)
        return list(await self.session.scalars(query))

    async def queued(self, name: str | None = None) -> list[JobRun]:
        query = select(JobRun).where(JobRun.state == "queued")
        if name is not None:
            query = query.where(JobRun.name == name)
        return list(await self.session.scalars(query))

    async def add_queued(self, run_id: str, name: str) -> None:
        self.session.add(JobRun(id=run_id, name=name, trigger="manual", state="queued", result={}))
        await self.session.flush()

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.session.add(AuditEntry(actor=actor[:64], action=action, target=target, detail=detail))
        await self.session.flush()

    async def delete_runs_before(self, cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(JobRun).where(JobRun.finished_at.is_not(None), JobRun.finished_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- states ---------------------------------------------------------------------

    async def states(self) -> dict[str, JobState]:
        return {s.name: s for s in await self.session.scalars(select(JobState))}

    async def state(self, name: str) -> JobState:
        """The job's state row, made on first use (two runs may begin at once: after a
        restart the recovered idle cycle and a new one both ask)."""
        row = await self.session.get(JobState, name)
        if row is None:
            values = {"name": name, "paused": False, "memo": {}, "updated_at": utcnow()}
            await insert_if_absent(self.session, JobState, values, ["name"])
            row = await self.session.get(JobState, name)
            assert row is not None
        return row

    async def set_paused(self, name: str, paused: bool) -> None:
        row = await self.state(name)
        row.paused = paused
        row.updated_at = utcnow()

    async def set_memo(self, name: str, memo: dict[str, Any]) -> None:
        row = await self.state(name)
        row.memo = dict(memo)
        row.updated_at = utcnow()

    # -- activity -------------------------------------------------------------------

    async def mark_activity(self, at: datetime) -> None:
        row = await self.session.get(Activity, ACTIVITY_KEY)
        if row is None:
            self.session.add(Activity(key=ACTIVITY_KEY, at=at))
        elif row.at < at:
            row.at = at

    async def last_activity(self) -> datetime | None:
        row = await self.session.get(Activity, ACTIVITY_KEY, populate_existing=True)
        return row.at if row is not None else None
