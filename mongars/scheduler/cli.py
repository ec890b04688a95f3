"""`mongars jobs ...`: the scheduler's jobs from the command line (docs/jobs.md).

It works on the database directly, like the API: pause, resume and cancel reach the
running server's jobs at their next step; `run` queues a run that the server leading
the scheduler picks up (within a second or so)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mongars.errors import DomainError
from mongars.secrets.cli import load_settings

jobs_app = typer.Typer(help="The scheduler's jobs (docs/jobs.md).", no_args_is_help=True)
console = Console()
T = TypeVar("T")
ACTOR = "cli"


def _with_admin(fn: Callable[[Any], Awaitable[T]]) -> T:
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.scheduler.admin import JobsAdmin
    from mongars.scheduler.idle import Activity, IdleGate
    from mongars.scheduler.setup import all_jobs

    settings = load_settings()

    async def go() -> T:
        engine = create_engine(settings.resolved_database_url)
        sessions = create_session_factory(engine)
        cfg = settings.scheduler
        gate = IdleGate(cfg, Activity(sessions, cfg.activity_write_s), lambda: 0)
        admin = JobsAdmin(sessions, settings, all_jobs(settings), gate)
        try:
            return await fn(admin)
        finally:
            await admin.close()
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


@jobs_app.command("list")
def list_jobs() -> None:
    """Every job: schedule, state, last and next run."""
    listing = _with_admin(lambda a: a.jobs())
    table = Table(title=f"Jobs (machine idle: {listing.idle}; {listing.idle_reason})")
    for col in ("job", "when", "state", "last run", "next run"):
        table.add_column(col)
    for j in listing.items:
        last = j.last_run
        table.add_row(
            j.name,
            j.schedule or "idle time",
            j.state,
            f"{last.state} {last.started_at:%Y-%m-%d %H:%M}" if last else "–",
            f"{j.next_run:%Y-%m-%d %H:%M}" if j.next_run else "–",
        )
    console.print(table)


@jobs_app.command("runs")
def list_runs(name: str, limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """A job's runs, newest first, with what they did and their energy."""
    page = _with_admin(lambda a: a.runs(name, None, limit))
    table = Table(title=f"Runs of {name}")
    for col in ("started", "trigger", "state", "steps", "result", "s", "CPU s", "Wh"):
        table.add_column(col)
    for r in page.items:
        table.add_row(
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            r.trigger,
            r.state + (f" ({r.error})" if r.error else ""),
            str(r.steps),
            ", ".join(f"{k} {v}" for k, v in r.result.items()) or "–",
            f"{r.duration_s:.1f}" if r.duration_s is not None else "–",
            f"{r.cpu_s:.2f}",
            f"{r.energy_wh:.4f} ({r.energy_method})",
        )
    console.print(table)


@jobs_app.command("run")
def run_job(name: str) -> None:
    """Queue a run now; the server that leads the scheduler runs it."""
    run = _with_admin(lambda a: a.trigger(name, ACTOR))
    console.print(f"queued {run.id}: a running server picks it up (mongars jobs runs {name})")


@jobs_app.command("pause")
def pause_job(name: str) -> None:
    _with_admin(lambda a: a.pause(name, ACTOR))
    console.print(f"{name} paused: no new runs; a running one stops at its next step")


@jobs_app.command("resume")
def resume_job(name: str) -> None:
    _with_admin(lambda a: a.resume(name, ACTOR))
    console.print(f"{name} resumed")


@jobs_app.command("cancel")
def cancel_job(name: str) -> None:
    _with_admin(lambda a: a.cancel(name, ACTOR))
    console.print(f"{name}: cancel requested (at its next step)")
