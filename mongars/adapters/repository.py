"""All SQL of the adapter registry: versions, the pointer, its changes, per-version
figures of the turns each version answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.adapters.models import AdapterChange, AdapterPointer, AdapterVersion
from mongars.auth.models import AuditEntry
from mongars.conversation.models import Turn
from mongars.db.base import utcnow
from mongars.feedback.models import Feedback

POINTER_ID = 1


@dataclass(frozen=True)
class TurnFigures:
    """Sums over the completed turns of one version (None: the base model)."""

    version: int | None
    turns: int
    down: int
    up: int
    confidence_n: int
    confidence_sum: float
    confidence_sq: float
    latency_sum: float
    latency_sq: float


class AdapterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.session.add(AuditEntry(actor=actor[:64], action=action, target=target, detail=detail))
        await self.session.flush()

    # -- versions ---------------------------------------------------------------

    async def version(self, version_id: int, lock: bool = False) -> AdapterVersion | None:
        return await self.session.get(AdapterVersion, version_id, with_for_update=lock)

    async def by_sha(self, sha256: str) -> AdapterVersion | None:
        query = select(AdapterVersion).where(AdapterVersion.sha256 == sha256)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def by_shas(self, shas: set[str]) -> dict[str, AdapterVersion]:
        if not shas:
            return {}
        query = select(AdapterVersion).where(AdapterVersion.sha256.in_(shas))
        return {v.sha256: v for v in (await self.session.execute(query)).scalars()}

    async def by_states(self, states: tuple[str, ...]) -> list[AdapterVersion]:
        query = select(AdapterVersion).where(AdapterVersion.state.in_(states))
        return list((await self.session.execute(query.order_by(AdapterVersion.id))).scalars())

    async def add(self, version: AdapterVersion) -> AdapterVersion:
        self.session.add(version)
        await self.session.flush()
        return version

    async def page(self, before: int | None, limit: int, state: str | None) -> list[AdapterVersion]:
        query = select(AdapterVersion).order_by(AdapterVersion.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AdapterVersion.id < before)
        if state is not None:
            query = query.where(AdapterVersion.state == state)
        return list((await self.session.execute(query)).scalars())

    async def live_shas(self) -> set[str]:
        """The hashes whose files must stay: every version not pruned."""
        query = select(AdapterVersion.sha256).where(AdapterVersion.state != "pruned")
        return set((await self.session.execute(query)).scalars())

    async def versions(self, ids: set[int]) -> dict[int, AdapterVersion]:
        if not ids:
            return {}
        query = select(AdapterVersion).where(AdapterVersion.id.in_(ids))
        return {v.id: v for v in (await self.session.execute(query)).scalars()}

    # -- the pointer ------------------------------------------------------------

    async def pointer(self, lock: bool = False) -> AdapterPointer:
        """The one pointer row (made on first use); ``lock`` serialises changes."""
        row = await self.session.get(AdapterPointer, POINTER_ID, with_for_update=lock)
        if row is None:
            row = AdapterPointer(id=POINTER_ID, canary_share=0.0, generation=0)
            self.session.add(row)
            await self.session.flush()
        return row

    async def bump(self, pointer: AdapterPointer) -> None:
        """A change of what serves: readers in every process compare ``generation``."""
        pointer.generation += 1
        pointer.updated_at = utcnow()
        await self.session.flush()

    async def record(
        self, action: str, from_id: int | None, to_id: int | None, actor: str, note: str
    ) -> AdapterChange:
        change = AdapterChange(
            action=action, from_id=from_id, to_id=to_id, actor=actor[:64], note=note
        )
        self.session.add(change)
        await self.session.flush()
        return change

    async def changes(self, limit: int, before: int | None = None) -> list[AdapterChange]:
        query = select(AdapterChange).order_by(AdapterChange.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AdapterChange.id < before)
        return list((await self.session.execute(query)).scalars())

    async def last_activation_of(self, version_id: int) -> AdapterChange | None:
        """The latest change that made ``version_id`` active by activation (not by a
        rollback): its ``from_id`` is what a rollback returns to."""
        query = (
            select(AdapterChange)
            .where(AdapterChange.to_id == version_id, AdapterChange.action == "activate")
            .order_by(AdapterChange.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    # -- figures ----------------------------------------------------------------

    async def turn_figures(self, since: datetime) -> list[TurnFigures]:
        """Per version: turns, thumbs down/up, confidence and latency sums."""
        down = func.sum(case((Feedback.rating == "down", 1), else_=0))
        up = func.sum(case((Feedback.rating == "up", 1), else_=0))
        query = (
            select(
                Turn.adapter_version,
                func.count(Turn.id),
                down,
                up,
                func.count(Turn.confidence),
                func.coalesce(func.sum(Turn.confidence), 0.0),
                func.coalesce(func.sum(Turn.confidence * Turn.confidence), 0.0),
                func.coalesce(func.sum(Turn.latency_ms), 0.0),
                func.coalesce(func.sum(Turn.latency_ms * Turn.latency_ms), 0.0),
            )
            .outerjoin(Feedback, Feedback.turn_id == Turn.id)
            .where(Turn.status == "completed", Turn.created_at >= since)
            .group_by(Turn.adapter_version)
        )
        rows: list[Any] = list((await self.session.execute(query)).all())
        return [
            TurnFigures(
                r[0],
                int(r[1]),
                int(r[2] or 0),
                int(r[3] or 0),
                int(r[4]),
                float(r[5]),
                float(r[6]),
                float(r[7]),
                float(r[8]),
            )
            for r in rows
        ]
