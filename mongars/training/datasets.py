"""Dataset curation and governance: build, list, read, export and delete datasets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import InvalidInput, NotFound, PayloadTooLarge
from mongars.persona.repository import ProfileRepository
from mongars.settings import Settings
from mongars.training import curation
from mongars.training.errors import DatasetNotTrainable
from mongars.training.models import Dataset
from mongars.training.repository import TrainingRepository
from mongars.training.schemas import DatasetOut, DatasetPage, DatasetPolicy, Violation


def encode_cursor(at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        at, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(at), key
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("malformed cursor: pass back the next_cursor of a page") from exc


class DatasetService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, secret: str
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.secret = secret
        self.root = settings.data_dir / "datasets"

    def folder(self, dataset_id: str) -> Path:
        return self.root / dataset_id

    async def curate(self, policy: DatasetPolicy, created_by: int | None, actor: str) -> DatasetOut:
        """Build a dataset from the consenting users' turns under ``policy``."""
        cfg = self.settings.training
        resolved = curation.resolve_policy(policy, cfg)
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            candidates = await repo.candidates(resolved.since, resolved.limit)
            usernames = await repo.usernames()
            consent = await ProfileRepository(session).training_consent(
                sorted({c.turn.user_id for c in candidates}), cfg.default_consent
            )
        allowed = [c for c in candidates if consent.get(c.turn.user_id, False)]
        built = await asyncio.to_thread(
            curation.build_records,
            allowed,
            resolved,
            system_prompt=self.settings.llm.system_prompt,
            usernames=usernames,
            secret=self.secret,
            source_node=curation.node_id(self.settings.data_dir),
        )
        status = "quarantined" if built.violations else "approved"
        dataset_id = uuid.uuid4().hex[:16]
        folder, sha = await asyncio.to_thread(
            curation.write_dataset, self.root, dataset_id, built, resolved, status
        )
        try:
            async with unit_of_work(self.sessions) as session:
                dataset = Dataset(
                    id=dataset_id,
                    status=status,
                    policy=resolved.to_json(),
                    records=len(built.records),
                    held_out=built.held_out,
                    sha256=sha,
                    violations=[v.model_dump() for v in built.violations],
                    scrubber_version=curation.SCRUBBER_VERSION,
                    created_by=created_by,
                    created_at=utcnow(),
                )
                repo = TrainingRepository(session)
                await repo.add_dataset(dataset, built.sources)
                detail = f"{status}, {len(built.records)} records"
                await repo.audit(actor, "training.dataset.curate", dataset_id, detail)
                return _out(dataset, 0)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # no files without a catalogue row
            raise

    async def page(self, cursor: str | None, limit: int) -> DatasetPage:
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            rows = await repo.datasets(decode_cursor(cursor), limit + 1)
            page = rows[:limit]
            items = await self._governed(session, page)
        more = len(rows) > limit
        return DatasetPage(
            items=items,
            next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        )

    async def get(self, dataset_id: str) -> DatasetOut:
        async with unit_of_work(self.sessions) as session:
            dataset = await self._find(session, dataset_id)
            return (await self._governed(session, [dataset]))[0]

    async def delete(self, dataset_id: str, actor: str) -> None:
        async with unit_of_work(self.sessions) as session:
            dataset = await self._find(session, dataset_id)
            repo = TrainingRepository(session)
            await repo.delete_dataset(dataset)
            await repo.audit(actor, "training.dataset.delete", dataset_id)
        await asyncio.to_thread(shutil.rmtree, self.folder(dataset_id), True)

    async def export_path(self, dataset_id: str) -> Path:
        await self.get(dataset_id)
        path = self.folder(dataset_id) / "data.jsonl"
        if not path.exists():
            raise NotFound(f"dataset {dataset_id} has no data file (deleted from disk?)")
        return path

    async def trainable(self, dataset_id: str) -> DatasetOut:
        """The dataset, re-checked now; refuses what must not be trained on."""
        dataset = await self.get(dataset_id)
        if dataset.status != "approved":
            reasons = "; ".join(v.detail for v in dataset.violations) or "quarantined"
            raise DatasetNotTrainable(f"dataset {dataset_id} is quarantined: {reasons}")
        if dataset.flagged:
            raise DatasetNotTrainable(
                f"dataset {dataset_id} holds {dataset.forgotten_records} record(s) its users "
                "have since forgotten: curate a new dataset"
            )
        train = dataset.records - dataset.held_out
        if train <= 0:
            raise DatasetNotTrainable(f"dataset {dataset_id} has no training records")
        if dataset.records > self.settings.training.max_records:
            raise PayloadTooLarge(
                f"dataset {dataset_id} has {dataset.records} records; the budget is "
                f"{self.settings.training.max_records} (MONGARS_TRAINING__MAX_RECORDS)"
            )
        if not (self.folder(dataset_id) / "data.jsonl").exists():
            raise DatasetNotTrainable(f"dataset {dataset_id} has no data file on disk")
        return dataset

    async def enforce_retention(self) -> int:
        """Delete datasets older than the retention period; returns how many."""
        cutoff = utcnow() - timedelta(days=self.settings.training.retention_days)
        async with unit_of_work(self.sessions) as session:
            old = await TrainingRepository(session).datasets_older_than(cutoff)
            ids = [d.id for d in old]
        for dataset_id in ids:
            with contextlib.suppress(NotFound):  # deleted meanwhile
                await self.delete(dataset_id, "system:retention")
        return len(ids)

    async def _find(self, session: AsyncSession, dataset_id: str) -> Dataset:
        dataset = await TrainingRepository(session).dataset(dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id}")
        return dataset

    async def _governed(self, session: AsyncSession, rows: Sequence[Dataset]) -> list[DatasetOut]:
        """Re-check what can change after curation: consent, retention, forgetting.
        A new violation quarantines the dataset for good."""
        repo = TrainingRepository(session)
        forgotten = await repo.forgotten_counts([d.id for d in rows])
        cutoff = utcnow() - timedelta(days=self.settings.training.retention_days)
        out = []
        for dataset in rows:
            if dataset.status == "approved":
                new = await self._new_violations(session, dataset, cutoff)
                if new:
                    violations = [Violation(**v) for v in dataset.violations] + new
                    await repo.quarantine(dataset, [v.model_dump() for v in violations])
                    await asyncio.to_thread(
                        curation.update_verdict, self.folder(dataset.id), "quarantined", violations
                    )
            out.append(_out(dataset, forgotten.get(dataset.id, 0)))
        return out

    async def _new_violations(
        self, session: AsyncSession, dataset: Dataset, cutoff: datetime
    ) -> list[Violation]:
        found = []
        users = await TrainingRepository(session).record_users(dataset.id)
        consent = await ProfileRepository(session).training_consent(
            users, self.settings.training.default_consent
        )
        withdrawn = [u for u in users if not consent.get(u, False)]
        if withdrawn:
            found.append(
                Violation(
                    code="consent_withdrawn",
                    detail=f"{len(withdrawn)} user(s) withdrew consent after curation",
                )
            )
        if dataset.created_at < cutoff:
            found.append(
                Violation(
                    code="past_retention",
                    detail=f"older than {self.settings.training.retention_days} days",
                )
            )
        return found


def _out(dataset: Dataset, forgotten: int) -> DatasetOut:
    return DatasetOut(
        id=dataset.id,
        status=dataset.status,  # type: ignore[arg-type]
        records=dataset.records,
        held_out=dataset.held_out,
        sha256=dataset.sha256,
        violations=[Violation(**v) for v in dataset.violations],
        policy=dataset.policy,
        scrubber_version=dataset.scrubber_version,
        created_at=dataset.created_at,
        flagged=forgotten > 0,
        forgotten_records=forgotten,
    )
