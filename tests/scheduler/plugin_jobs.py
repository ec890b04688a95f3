"""Jobs for the scheduler's tests, loaded like any plugin (MONGARS_SCHEDULER__PLUGINS).

Each step appends ``<job> <run id> <index>`` to ``<data_dir>/steps.log`` (so a test,
or a test in another process, sees which steps ran and how often). Their size comes
from the environment: TEST_JOB_STEPS (steps per job), TEST_JOB_STEP_S (seconds each)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from mongars.runtime import Runtime
from mongars.scheduler.jobs import JobContext, JobSpec, StepResult


def log_path(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)  # on PostgreSQL nothing else made it
    return data_dir / "steps.log"


def read_log(data_dir: Path) -> list[tuple[str, str, int]]:
    path = log_path(data_dir)
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(job, run, int(index)) for job, run, index in rows]


def _steps() -> int:
    return int(os.environ.get("TEST_JOB_STEPS", "5"))


async def _record(ctx: JobContext, index: int) -> None:
    with log_path(ctx.runtime.settings.data_dir).open("a") as f:
        f.write(f"{ctx.name} {ctx.run_id} {index}\n")
    await asyncio.sleep(float(os.environ.get("TEST_JOB_STEP_S", "0.2")))


async def cursor_step(ctx: JobContext) -> StepResult:
    """Goes on where the last run stopped (the memo's cursor), as real idle jobs do."""
    cursor = int(ctx.memo.get("cursor", 0))
    await _record(ctx, cursor)
    ctx.memo["cursor"] = cursor + 1
    return StepResult(cursor + 1 >= _steps(), {"items": 1}, f"{cursor + 1}/{_steps()}")


async def _cursor_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return int(memo.get("cursor", 0)) < _steps()


async def indexed_step(ctx: JobContext) -> StepResult:
    """Step n of one run (not resumable through a memo: the workflow's own replay is)."""
    await _record(ctx, ctx.index)
    return StepResult(ctx.index + 1 >= _steps(), {"items": 1})


async def tick_step(ctx: JobContext) -> StepResult:
    with log_path(ctx.runtime.settings.data_dir).open("a") as f:
        f.write(f"{ctx.name} {ctx.run_id} 0\n")
    return StepResult(True, {"ticks": 1})


async def failing_step(ctx: JobContext) -> StepResult:
    raise ValueError("a step that always fails")


def idle_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "test.idle", "cursor job on idle time", cursor_step, idle_only=True, due=_cursor_due
        )
    ]


def tick_jobs() -> list[JobSpec]:
    return [JobSpec("test.tick", "every second", tick_step, schedule="* * * * * *")]


def manual_jobs() -> list[JobSpec]:
    return [
        JobSpec("test.slow", "steps by hand", indexed_step),
        JobSpec("test.fail", "fails", failing_step),
    ]
