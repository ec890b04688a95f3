"""Building the scheduler for a running app: the jobs of every feature, then start."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, datetime, timedelta

from dbos import DBOS

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.runtime import Runtime
from mongars.scheduler import workflows
from mongars.scheduler.jobs import JobContext, JobSpec, StepResult
from mongars.scheduler.repository import SchedulerRepository
from mongars.scheduler.service import Scheduler
from mongars.settings import Settings

GC_BATCH = 500
CYCLE_KEEP = timedelta(days=1)  # idle-cycle ticks (one a minute) that found nothing


async def gc_step(ctx: JobContext) -> StepResult:
    """Finished job runs past ``keep_runs_days``, and DBOS's records of them."""
    keep = timedelta(days=ctx.runtime.settings.scheduler.keep_runs_days)
    async with unit_of_work(ctx.runtime.sessions) as session:
        runs = await SchedulerRepository(session).delete_runs_before(utcnow() - keep)
    workflows_deleted = 0
    for names, age in (([workflows.CYCLE_WORKFLOW], CYCLE_KEEP), (None, keep)):
        cutoff = (datetime.now(UTC) - age).isoformat()
        while True:
            found = await asyncio.to_thread(
                DBOS.list_workflows,
                name=names,
                status=["SUCCESS", "ERROR", "CANCELLED"],
                end_time=cutoff,
                limit=GC_BATCH,
                load_input=False,
                load_output=False,
            )
            if not found:
                break
            await asyncio.to_thread(DBOS.delete_workflows, [w.workflow_id for w in found])
            workflows_deleted += len(found)
    return StepResult(True, {"runs": runs, "workflows": workflows_deleted})


def scheduler_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "scheduler.gc",
            "Delete old job runs and their workflow records (MONGARS_SCHEDULER__KEEP_RUNS_DAYS)",
            gc_step,
            schedule="41 3 * * *",
        )
    ]


def plugin_jobs(paths: list[str]) -> list[JobSpec]:
    """``module:function`` entries, each returning a list of JobSpec."""
    specs: list[JobSpec] = []
    for path in paths:
        module, _, func = path.partition(":")
        if not module or not func:
            raise ValueError(f"scheduler plugin {path!r}: write it as module:function")
        specs.extend(getattr(importlib.import_module(module), func)())
    return specs


def all_jobs(settings: Settings) -> list[JobSpec]:
    """Every job this server's settings have (the server's and `mongars jobs`)."""
    from mongars.evolution.tasks import evolution_jobs
    from mongars.memory.tasks import memory_jobs
    from mongars.training.tasks import training_jobs

    specs = scheduler_jobs() + training_jobs()
    if settings.memory.enabled:
        specs += memory_jobs()
    specs += evolution_jobs(settings)
    specs += plugin_jobs(settings.scheduler.plugins)
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"two jobs share a name: {sorted(names)}")
    return specs


async def start_scheduler(runtime: Runtime) -> Scheduler:
    scheduler = Scheduler(runtime, all_jobs(runtime.settings))
    await scheduler.start()
    return scheduler
