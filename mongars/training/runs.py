"""Training runs: start, watch, pause, resume and cancel, one run at a time.

The run itself trains in a child process (``mongars.training.worker``) at low CPU
priority; :class:`RunSupervisor` starts it, follows the events it appends to
``progress.jsonl`` and keeps the catalogue row (and the metrics) up to date."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars import extras
from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import NotFound
from mongars.settings import Settings
from mongars.training import spec as run_spec
from mongars.training.datasets import DatasetService, decode_cursor, encode_cursor
from mongars.training.errors import InsufficientStorage, RunStateConflict, TrainingBusy
from mongars.training.models import TrainingRun
from mongars.training.repository import TrainingRepository
from mongars.training.schemas import RunCreate, RunOut, RunPage
from mongars.training.supervisor import RunSupervisor

ACTIVE = ("queued", "running", "pausing")


class RunService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        datasets: DatasetService,
        supervisor: RunSupervisor,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.datasets = datasets
        self.supervisor = supervisor

    async def start(self, body: RunCreate, created_by: int | None, actor: str) -> RunOut:
        extras.require(extras.TRAINING, "training")
        dataset = await self.datasets.trainable(body.dataset_id)
        self._check_disk()
        cfg = self.settings.training
        max_steps = body.max_steps or cfg.max_steps
        run_id = uuid.uuid4().hex[:16]
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            await self._check_idle(repo)
            run = await repo.add_run(
                TrainingRun(
                    id=run_id,
                    dataset_id=dataset.id,
                    dataset_sha256=dataset.sha256,
                    objective=body.objective,
                    status="queued",
                    params=run_spec.params(cfg, body.objective, max_steps),
                    created_by=created_by,
                    created_at=utcnow(),
                )
            )
            run_spec.write(self.settings, run, self.datasets.folder(dataset.id))
            detail = f"{body.objective} on dataset {dataset.id}, {max_steps} steps"
            await repo.audit(actor, "training.run.start", run_id, detail)
        await self.supervisor.launch(run_id, resume=False)
        return await self.get(run_id)

    async def get(self, run_id: str) -> RunOut:
        async with unit_of_work(self.sessions) as session:
            run = await self._find(TrainingRepository(session), run_id)
            flagged = await self._flagged(session, [run])
            return run_out(run, run.dataset_id in flagged)

    async def page(self, cursor: str | None, limit: int) -> RunPage:
        async with unit_of_work(self.sessions) as session:
            rows = await TrainingRepository(session).runs(decode_cursor(cursor), limit + 1)
            page = rows[:limit]
            flagged = await self._flagged(session, page)
        more = len(rows) > limit
        return RunPage(
            items=[run_out(r, r.dataset_id in flagged) for r in page],
            next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        )

    async def pause(self, run_id: str, actor: str) -> RunOut:
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            run = await self._find(repo, run_id)
            await repo.audit(actor, "training.run.pause", run_id, f"was {run.status}")
            if run.status == "queued":
                await repo.update_run(run, status="paused")
            elif run.status == "running":
                await repo.update_run(run, status="pausing")
            elif run.status not in ("pausing", "paused"):
                raise RunStateConflict(f"run {run_id} is {run.status}: only a running run pauses")
        self.supervisor.signal_pause(run_id, run.pid)
        return await self.get(run_id)

    async def resume(self, run_id: str, actor: str) -> RunOut:
        extras.require(extras.TRAINING, "training")
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            run = await self._find(repo, run_id)
            await repo.audit(actor, "training.run.resume", run_id, f"was {run.status}")
            if run.status not in ("paused", "failed"):
                raise RunStateConflict(
                    f"run {run_id} is {run.status}: only a paused or failed run resumes"
                )
            await self._check_idle(repo)
            run_spec.check_checkpoint(self.supervisor.run_dir(run_id))
            self._check_disk()
            await repo.update_run(run, status="queued", error=None, finished_at=None)
        await self.supervisor.launch(run_id, resume=True)
        return await self.get(run_id)

    async def cancel(self, run_id: str, actor: str) -> RunOut:
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            run = await self._find(repo, run_id)
            await repo.audit(actor, "training.run.cancel", run_id, f"was {run.status}")
            if run.status in ("completed", "cancelled"):
                raise RunStateConflict(f"run {run_id} is already {run.status}")
            await self.supervisor.kill(run_id, run.pid)
            await repo.update_run(run, status="cancelled", finished_at=utcnow(), eta_s=None)
        # Nothing half-written stays: checkpoints and partial adapters go.
        shutil.rmtree(self.supervisor.run_dir(run_id) / "checkpoints", ignore_errors=True)
        return await self.get(run_id)

    async def _check_idle(self, repo: TrainingRepository) -> None:
        busy = await repo.active_runs()
        if busy or self.supervisor.lock_held():
            which = busy[0].id if busy else "(another process)"
            raise TrainingBusy(
                f"training run {which} is active: one run at a time on a machine; "
                "pause or cancel it first"
            )

    def _check_disk(self) -> None:
        root = self.settings.data_dir
        root.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(root).free // (1024 * 1024)
        need = self.settings.training.min_free_disk_mb
        if free_mb < need:
            raise InsufficientStorage(
                f"{free_mb} MB free under {root}; training needs {need} MB "
                "(MONGARS_TRAINING__MIN_FREE_DISK_MB)"
            )

    async def _find(self, repo: TrainingRepository, run_id: str) -> TrainingRun:
        run = await repo.run(run_id)
        if run is None:
            raise NotFound(f"no training run {run_id}")
        return run

    async def _flagged(self, session: AsyncSession, runs: list[TrainingRun]) -> set[str]:
        """Datasets behind these runs that hold forgotten turns (or are gone)."""
        repo = TrainingRepository(session)
        ids = sorted({r.dataset_id for r in runs})
        counts = await repo.forgotten_counts(ids)
        gone = {i for i in ids if await repo.dataset(i) is None}
        return {i for i, n in counts.items() if n} | gone


def run_out(run: TrainingRun, dataset_flagged: bool = False) -> RunOut:
    metrics: dict[str, Any] = run.metrics or {}
    total = run.total_steps or 0
    return RunOut(
        id=run.id,
        dataset_id=run.dataset_id,
        dataset_sha256=run.dataset_sha256,
        objective=run.objective,
        status=run.status,  # type: ignore[arg-type]
        step=run.step,
        total_steps=total,
        progress=min(1.0, run.step / total) if total else 0.0,
        loss=run.loss,
        eta_s=run.eta_s,
        params=run.params,
        metrics=metrics,
        perplexity_base=metrics.get("perplexity_base"),
        perplexity_adapter=metrics.get("perplexity_adapter"),
        adapter_sha256=run.adapter_sha256,
        mlflow_run_id=run.mlflow_run_id,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        dataset_flagged=dataset_flagged,
    )
