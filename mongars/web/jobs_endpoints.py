"""Console page for the scheduler (Sommeil Paradoxal, admins): every job, its state,
last and next run, and its runs; run now, pause, resume and cancel, audited like every
admin action (the scheduler's own service does the work: docs/jobs.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from mongars.deps import RuntimeDep
from mongars.errors import FeatureDisabled
from mongars.scheduler.service import Scheduler
from mongars.web.render import HtmlRoute, redirect, render, safe_next
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin/jobs", route_class=HtmlRoute, include_in_schema=False)

Name = Annotated[str, Path(min_length=1, max_length=64)]
Cursor = Annotated[str | None, Query(max_length=300)]
Back = Annotated[str | None, Form(max_length=200)]
PAGE = 20
OFF = "The scheduler is off on this server (MONGARS_SCHEDULER__ENABLED=false): no job runs."


def get_scheduler(runtime: RuntimeDep) -> Scheduler:
    if runtime.scheduler is None:
        raise FeatureDisabled(OFF)
    return runtime.scheduler


SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


def _back(target: str | None) -> str:
    """Back to the page the form was on: this console's job pages only."""
    url = safe_next(target, "/admin/jobs")
    return url if url == "/admin/jobs" or url.startswith("/admin/jobs/") else "/admin/jobs"


@router.get("")
async def jobs_page(request: Request, user: WebAdmin, runtime: RuntimeDep) -> HTMLResponse:
    if runtime.scheduler is None:
        return render(request, "admin_jobs.html", {"user": user, "off": OFF})
    jobs = await runtime.scheduler.jobs()
    active = any(
        j.state == "running"
        or (j.last_run is not None and j.last_run.state in ("queued", "running", "cancelling"))
        for j in jobs.items
    )
    return render(request, "admin_jobs.html", {"user": user, "jobs": jobs, "active": active})


@router.get("/{name}")
async def job_page(
    request: Request, user: WebAdmin, runtime: RuntimeDep, name: Name, cursor: Cursor = None
) -> HTMLResponse:
    if runtime.scheduler is None:
        return render(request, "admin_job.html", {"user": user, "name": name, "off": OFF})
    scheduler = runtime.scheduler
    runs = await scheduler.runs(name, cursor, PAGE)  # NotFound for an unknown job
    job = next(j for j in (await scheduler.jobs()).items if j.name == name)
    active = job.state == "running" or any(
        r.state in ("queued", "running", "cancelling") for r in runs.items
    )
    return render(
        request,
        "admin_job.html",
        {"user": user, "name": name, "job": job, "runs": runs, "cursor": cursor, "active": active},
    )


@router.post("/{name}/run", dependencies=[CsrfChecked])
async def run_job(
    user: WebAdmin, scheduler: SchedulerDep, name: Name, back: Back = None
) -> Response:
    run = await scheduler.trigger(name, user.username)
    return redirect(_back(back), flash=f"Job {name}: run {run.id} queued.")


@router.post("/{name}/pause", dependencies=[CsrfChecked])
async def pause_job(
    user: WebAdmin, scheduler: SchedulerDep, name: Name, back: Back = None
) -> Response:
    await scheduler.pause(name, user.username)
    return redirect(_back(back), flash=f"Job {name} paused.")


@router.post("/{name}/resume", dependencies=[CsrfChecked])
async def resume_job(
    user: WebAdmin, scheduler: SchedulerDep, name: Name, back: Back = None
) -> Response:
    await scheduler.resume(name, user.username)
    return redirect(_back(back), flash=f"Job {name} resumed.")


@router.post("/{name}/cancel", dependencies=[CsrfChecked])
async def cancel_job(
    user: WebAdmin, scheduler: SchedulerDep, name: Name, back: Back = None
) -> Response:
    await scheduler.cancel(name, user.username)
    return redirect(_back(back), flash=f"Job {name}: cancel requested.")
