"""The learning loop's jobs for the scheduler (docs/jobs.md): dataset retention, and,
on idle time, curating a dataset once enough new consented feedback exists, then
training on it. Training yields to users: when one comes back, the run is paused (the
worker checkpoints at its next optimizer step and exits) and resumed at the next idle
period, from that checkpoint."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mongars import extras
from mongars.db.engine import unit_of_work
from mongars.persona.repository import ProfileRepository
from mongars.scheduler.jobs import JobContext, JobSpec, StepResult
from mongars.training.repository import TrainingRepository
from mongars.training.schemas import DatasetPolicy, RunCreate

if TYPE_CHECKING:
    from mongars.runtime import Runtime
    from mongars.training.setup import TrainingSystem

ACTOR = "sommeil"  # in the audit log, for what the scheduler did on its own
PAUSE_WAIT_S = 600.0  # a training step is seconds; a stuck worker must not hang the job


def _training(runtime: Runtime) -> TrainingSystem:
    assert runtime.training is not None, "the learning loop is not running"
    return runtime.training


async def retention_step(ctx: JobContext) -> StepResult:
    deleted = await _training(ctx.runtime).datasets.enforce_retention()
    return StepResult(True, {"deleted": deleted})


async def new_feedback(runtime: Runtime) -> int:
    """Rated-up or corrected turns, from consenting users, since the newest dataset."""
    async with unit_of_work(runtime.sessions) as session:
        repo = TrainingRepository(session)
        users = await repo.feedback_users_since(await repo.newest_dataset_at())
        consent = await ProfileRepository(session).training_consent(
            sorted(set(users)), runtime.settings.training.default_consent
        )
    return sum(1 for u in users if consent.get(u, False))


async def _curate_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return (
        runtime.training is not None
        and await new_feedback(runtime) >= runtime.settings.scheduler.curate_min_feedback
    )


async def curate_step(ctx: JobContext) -> StepResult:
    fresh = await new_feedback(ctx.runtime)
    dataset = await _training(ctx.runtime).datasets.curate(DatasetPolicy(), None, ACTOR)
    quarantined = int(dataset.status == "quarantined")
    return StepResult(
        True,
        {"feedback": fresh, "records": dataset.records, "quarantined": quarantined},
        f"dataset {dataset.id}: {dataset.status}",
    )


async def _untrained(runtime: Runtime) -> list[str]:
    async with unit_of_work(runtime.sessions) as session:
        return [d.id for d in await TrainingRepository(session).untrained_datasets()]


async def _train_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    if runtime.training is None or not runtime.settings.scheduler.auto_train:
        return False
    if extras.missing(extras.TRAINING):  # no PyTorch stack here: curation only
        return False
    if memo.get("run_id"):
        run = await runtime.training.runs.get(memo["run_id"])
        if run.status in ("paused", "queued", "running", "pausing"):
            return True
    return bool(await _untrained(runtime))


async def train_step(ctx: JobContext) -> StepResult:
    """Start (or resume) a run, follow it, and pause it when the job must stop."""
    runs = _training(ctx.runtime).runs
    run_id = ctx.memo.get("run_id")
    run = await runs.get(run_id) if run_id else None
    if run is None or run.status in ("completed", "failed", "cancelled"):
        todo = await _untrained(ctx.runtime)
        if not todo:
            ctx.memo.pop("run_id", None)
            return StepResult(True, progress="no approved dataset left to train on")
        run = await runs.start(RunCreate(dataset_id=todo[0]), None, ACTOR)
        ctx.memo["run_id"] = run.id
        await ctx.save_memo()
    elif run.status == "paused":
        run = await runs.resume(run.id, ACTOR)
    check_s = ctx.runtime.settings.scheduler.yield_check_s
    while True:
        await ctx.pause(check_s)
        run = await runs.get(run.id)
        if run.status == "completed":
            ctx.memo.pop("run_id", None)
            return StepResult(True, {"runs": 1, "steps": run.step}, f"run {run.id} completed")
        if run.status in ("failed", "cancelled"):
            ctx.memo.pop("run_id", None)
            raise RuntimeError(f"training run {run.id} {run.status}: {run.error or ''}")
        if await ctx.should_stop() is not None:
            return await _pause(ctx, run.id)


async def _pause(ctx: JobContext, run_id: str) -> StepResult:
    runs = _training(ctx.runtime).runs
    run = await runs.pause(run_id, ACTOR)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PAUSE_WAIT_S
    while run.status == "pausing" and loop.time() < deadline:
        await asyncio.sleep(0.1)
        run = await runs.get(run_id)
    return StepResult(False, progress=f"run {run_id} {run.status} at step {run.step}")


def training_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "training.retention",
            "Delete training datasets past retention (MONGARS_TRAINING__RETENTION_DAYS)",
            retention_step,
            schedule="23 * * * *",
        ),
        JobSpec(
            "training.curate",
            "Curate a dataset once enough new consented feedback exists",
            curate_step,
            idle_only=True,
            priority=50,
            due=_curate_due,
        ),
        JobSpec(
            "training.train",
            "Train (LoRA) and evaluate on a new approved dataset; yields to users",
            train_step,
            idle_only=True,
            priority=60,
            due=_train_due,
        ),
    ]
