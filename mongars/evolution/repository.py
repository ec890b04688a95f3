"""All SQL of the evolution engine: decisions, and the figures its diagnostics read
(turns, job runs, pending consolidation work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry
from mongars.conversation.models import Turn
from mongars.evolution.models import EvolutionDecision
from mongars.scheduler.models import JobRun


class EvolutionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.session.add(AuditEntry(actor=actor[:64], action=action, target=target, detail=detail))
        await self.session.flush()

    # -- decisions --------------------------------------------------------------

    async def add(self, decision: EvolutionDecision) -> EvolutionDecision:
        self.session.add(decision)
        await self.session.flush()
        return decision

    async def get(self, decision_id: int, lock: bool = False) -> EvolutionDecision | None:
        return await self.session.get(EvolutionDecision, decision_id, with_for_update=lock)

    async def page(
        self, before: int | None, limit: int, status: str | None
    ) -> list[EvolutionDecision]:
        query = select(EvolutionDecision).order_by(EvolutionDecision.id.desc()).limit(limit)
        if before is not None:
            query = query.where(EvolutionDecision.id < before)
        if status is not None:
            query = query.where(EvolutionDecision.status == status)
        return list((await self.session.execute(query)).scalars())

    async def awaiting(self, rule: str, action: str) -> EvolutionDecision | None:
        query = (
            select(EvolutionDecision)
            .where(
                EvolutionDecision.rule == rule,
                EvolutionDecision.action == action,
                EvolutionDecision.status == "awaiting_approval",
            )
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def last_of(self, rule: str, action: str | None = None) -> EvolutionDecision | None:
        """The newest decision of ``rule`` (and ``action``, when given)."""
        query = select(EvolutionDecision).where(EvolutionDecision.rule == rule)
        if action is not None:
            query = query.where(EvolutionDecision.action == action)
        query = query.order_by(EvolutionDecision.id.desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    # -- figures ----------------------------------------------------------------

    async def turn_latencies(self, since: datetime) -> dict[str, list[float]]:
        """Completed turns' latencies (ms) per model, since ``since``."""
        query = select(Turn.model, Turn.latency_ms).where(
            Turn.status == "completed", Turn.created_at >= since
        )
        out: dict[str, list[float]] = {}
        for model, latency in (await self.session.execute(query)).all():
            out.setdefault(str(model), []).append(float(latency))
        return out

    async def turn_statuses(self, since: datetime) -> dict[str, int]:
        query = (
            select(Turn.status, func.count(Turn.id))
            .where(Turn.created_at >= since)
            .group_by(Turn.status)
        )
        return {str(s): int(n) for s, n in (await self.session.execute(query)).all()}

    async def job_energy(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Per job: runs started since ``since``, their CPU seconds and energy (Wh)."""
        query = (
            select(
                JobRun.name,
                func.count(JobRun.id),
                func.coalesce(func.sum(JobRun.cpu_s), 0.0),
                func.coalesce(func.sum(JobRun.energy_wh), 0.0),
            )
            .where(JobRun.started_at >= since)
            .group_by(JobRun.name)
        )
        return {
            str(name): {"runs": int(n), "cpu_s": float(cpu), "energy_wh": float(wh)}
            for name, n, cpu, wh in (await self.session.execute(query)).all()
        }

    async def active_jobs(self) -> list[str]:
        query = select(JobRun.name).where(JobRun.state.in_(("queued", "running", "cancelling")))
        return sorted({str(n) for n in (await self.session.execute(query)).scalars()})
