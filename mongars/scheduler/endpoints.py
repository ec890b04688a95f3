"""/api/v1/jobs: the scheduler's jobs and their runs (admin only; docs/jobs.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from mongars.deps import AdminUser, RuntimeDep
from mongars.errors import FeatureDisabled
from mongars.scheduler.schemas import JobList, JobOut, JobRunOut, JobRunPage
from mongars.scheduler.service import Scheduler

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

Name = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=300)]


def get_scheduler(runtime: RuntimeDep) -> Scheduler:
    if runtime.scheduler is None:
        raise FeatureDisabled("the scheduler is off on this server (MONGARS_SCHEDULER__ENABLED)")
    return runtime.scheduler


SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


@router.get("", response_model=JobList)
async def list_jobs(admin: AdminUser, scheduler: SchedulerDep) -> JobList:
    """Every job: schedule, idle policy, state, last and next run; and the idle gate now."""
    return await scheduler.jobs()


@router.get("/{name}/runs", response_model=JobRunPage)
async def list_runs(
    admin: AdminUser, scheduler: SchedulerDep, name: Name, cursor: Cursor = None, limit: Limit = 20
) -> JobRunPage:
    """A job's runs, newest first: state, progress, duration, CPU seconds, energy."""
    return await scheduler.runs(name, cursor, limit)


@router.post("/{name}/run", response_model=JobRunOut, status_code=202)
async def run_job(admin: AdminUser, scheduler: SchedulerDep, name: Name) -> JobRunOut:
    """Queue a run now (idle-only jobs too: an admin's run does not wait for idle time)."""
    return await scheduler.trigger(name, admin.username)


@router.post("/{name}/pause", response_model=JobOut)
async def pause_job(admin: AdminUser, scheduler: SchedulerDep, name: Name) -> JobOut:
    """No new runs; a running one stops at its next step."""
    return await scheduler.pause(name, admin.username)


@router.post("/{name}/resume", response_model=JobOut)
async def resume_job(admin: AdminUser, scheduler: SchedulerDep, name: Name) -> JobOut:
    return await scheduler.resume(name, admin.username)


@router.post("/{name}/cancel", response_model=JobOut)
async def cancel_job(admin: AdminUser, scheduler: SchedulerDep, name: Name) -> JobOut:
    """The running run stops at its next step (a queued one never starts)."""
    return await scheduler.cancel(name, admin.username)
