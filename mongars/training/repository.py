"""All SQL of the learning loop: curation candidates, the dataset catalogue, runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry, User
from mongars.conversation.models import Turn
from mongars.feedback.models import Feedback
from mongars.memory.models import ForgottenTurn
from mongars.training.models import Dataset, DatasetRecord, TrainingRun


@dataclass(frozen=True)
class Candidate:
    """A turn that may become a record, with its owner's feedback."""

    turn: Turn
    rating: str | None
    correction: str | None


class TrainingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        """Admin actions on datasets and runs go to the admin audit log, in the same
        transaction as the change."""
        self.session.add(AuditEntry(actor=actor[:64], action=action, target=target, detail=detail))
        await self.session.flush()

    # -- curation -------------------------------------------------------------------

    async def candidates(self, since: datetime | None, limit: int) -> list[Candidate]:
        """Completed turns, newest first, that no user has forgotten."""
        forgotten = select(ForgottenTurn.turn_id)
        query = (
            select(Turn, Feedback.rating, Feedback.correction)
            .outerjoin(Feedback, Feedback.turn_id == Turn.id)
            .where(Turn.status == "completed", Turn.id.not_in(forgotten))
        )
        if since is not None:
            query = query.where(Turn.created_at >= since)
        rows = await self.session.execute(
            query.order_by(Turn.created_at.desc(), Turn.id.desc()).limit(limit)
        )
        return [Candidate(turn, rating, correction) for turn, rating, correction in rows]

    async def feedback_users_since(self, since: datetime | None) -> list[int]:
        """The owner of each turn rated up or corrected since ``since`` (one per turn)."""
        query = select(Feedback.user_id).where(
            or_(Feedback.rating == "up", Feedback.correction.is_not(None))
        )
        if since is not None:
            query = query.where(Feedback.updated_at > since)
        return list(await self.session.scalars(query))

    async def newest_dataset_at(self) -> datetime | None:
        return await self.session.scalar(select(func.max(Dataset.created_at)))

    async def untrained_datasets(self) -> list[Dataset]:
        """Approved datasets no run was started on, newest first."""
        trained = select(TrainingRun.dataset_id)
        rows = await self.session.scalars(
            select(Dataset)
            .where(Dataset.status == "approved", Dataset.id.not_in(trained))
            .order_by(Dataset.created_at.desc())
        )
        return list(rows)

    async def usernames(self) -> dict[int, str]:
        rows = await self.session.execute(select(User.id, User.username))
        return {user_id: name for user_id, name in rows}

    # -- datasets -------------------------------------------------------------------

    async def add_dataset(self, dataset: Dataset, records: Sequence[tuple[int, int]]) -> None:
        """The dataset and the (turn id, user id) of each record."""
        self.session.add(dataset)
        await self.session.flush()
        self.session.add_all(
            DatasetRecord(dataset_id=dataset.id, turn_id=turn_id, user_id=user_id)
            for turn_id, user_id in records
        )
        await self.session.flush()

    async def dataset(self, dataset_id: str) -> Dataset | None:
        return await self.session.get(Dataset, dataset_id)

    async def datasets(self, before: tuple[datetime, str] | None, limit: int) -> list[Dataset]:
        query = select(Dataset)
        if before is not None:
            at, dataset_id = before
            query = query.where(
                or_(Dataset.created_at < at, (Dataset.created_at == at) & (Dataset.id < dataset_id))
            )
        rows = await self.session.scalars(
            query.order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(limit)
        )
        return list(rows)

    async def datasets_older_than(self, cutoff: datetime) -> list[Dataset]:
        return list(await self.session.scalars(select(Dataset).where(Dataset.created_at < cutoff)))

    async def delete_dataset(self, dataset: Dataset) -> None:
        await self.session.execute(
            delete(DatasetRecord).where(DatasetRecord.dataset_id == dataset.id)
        )
        await self.session.delete(dataset)
        await self.session.flush()

    async def quarantine(self, dataset: Dataset, violations: list[dict[str, Any]]) -> None:
        dataset.status = "quarantined"
        dataset.violations = violations
        await self.session.flush()

    async def record_users(self, dataset_id: str) -> list[int]:
        rows = await self.session.scalars(
            select(DatasetRecord.user_id).where(DatasetRecord.dataset_id == dataset_id).distinct()
        )
        return list(rows)

    async def forgotten_counts(self, dataset_ids: Sequence[str]) -> dict[str, int]:
        """Per dataset, its records whose turn is forgotten or gone."""
        if not dataset_ids:
            return {}
        forgotten = select(ForgottenTurn.turn_id)
        existing = select(Turn.id)
        rows = await self.session.execute(
            select(DatasetRecord.dataset_id, func.count())
            .where(
                DatasetRecord.dataset_id.in_(dataset_ids),
                or_(DatasetRecord.turn_id.in_(forgotten), DatasetRecord.turn_id.not_in(existing)),
            )
            .group_by(DatasetRecord.dataset_id)
        )
        return {dataset_id: int(count) for dataset_id, count in rows}

    # -- runs -----------------------------------------------------------------------

    async def add_run(self, run: TrainingRun) -> TrainingRun:
        self.session.add(run)
        await self.session.flush()
        return run

    async def run(self, run_id: str) -> TrainingRun | None:
        return await self.session.get(TrainingRun, run_id)

    async def runs(self, before: tuple[datetime, str] | None, limit: int) -> list[TrainingRun]:
        query = select(TrainingRun)
        if before is not None:
            at, run_id = before
            query = query.where(
                or_(
                    TrainingRun.created_at < at,
                    (TrainingRun.created_at == at) & (TrainingRun.id < run_id),
                )
            )
        rows = await self.session.scalars(
            query.order_by(TrainingRun.created_at.desc(), TrainingRun.id.desc()).limit(limit)
        )
        return list(rows)

    async def active_runs(self) -> list[TrainingRun]:
        rows = await self.session.scalars(
            select(TrainingRun).where(TrainingRun.status.in_(("queued", "running", "pausing")))
        )
        return list(rows)

    async def update_run(self, run: TrainingRun, **values: Any) -> TrainingRun:
        for name, value in values.items():
            setattr(run, name, value)
        await self.session.flush()
        return run

    async def completed_adapters(self, limit: int) -> list[TrainingRun]:
        """Completed runs that produced an adapter, newest adapter first."""
        produced = func.coalesce(TrainingRun.finished_at, TrainingRun.created_at)
        rows = await self.session.scalars(
            select(TrainingRun)
            .where(TrainingRun.status == "completed", TrainingRun.adapter_sha256.is_not(None))
            .order_by(produced.desc(), TrainingRun.id.desc())
            .limit(limit)
        )
        return list(rows)
