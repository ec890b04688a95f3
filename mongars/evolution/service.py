"""The evolution engine: gather diagnostics, run the rule table, execute the safe
actions (or leave them awaiting an admin) and record every decision with its inputs.

Actions that change what users get (a rollback) wait for an approval unless
``MONGARS_EVOLUTION__AUTO_ROLLBACK`` is true. The same rule and action are not
decided again while one awaits approval, nor within ``cooldown_min`` of the last."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.errors import DomainError
from mongars.evolution.diagnostics import Diagnostics, Host, gather
from mongars.evolution.errors import DecisionNotFound, DecisionStateConflict
from mongars.evolution.models import EvolutionDecision
from mongars.evolution.repository import EvolutionRepository
from mongars.evolution.rules import NEEDS_APPROVAL, Proposal, evaluate
from mongars.evolution.schemas import DecisionOut, DecisionPage

log = logging.getLogger(__name__)
ACTOR = "evolution"  # in the audit log and the adapter history, for what it did itself
SCHEDULER_OFF = "the scheduler is off on this server (MONGARS_SCHEDULER__ENABLED=false)"


def decision_out(row: EvolutionDecision) -> DecisionOut:
    return DecisionOut.model_validate(row, from_attributes=True)


class EvolutionEngine:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.settings = host.settings
        self._lock = asyncio.Lock()
        self.last: Diagnostics | None = None  # the figures of the latest pass

    # -- diagnosing -------------------------------------------------------------

    async def diagnostics(self) -> Diagnostics:
        return await gather(self.host, await self._paused_by_engine())

    async def diagnose(self) -> list[DecisionOut]:
        """One pass: figures, rules, actions; the decisions it recorded."""
        async with self._lock:
            d = self.last = await self.diagnostics()
            made = []
            for proposal in evaluate(d, self.settings.evolution):
                if await self._duplicate(proposal):
                    continue
                made.append(await self._decide(proposal))
            return made

    async def _paused_by_engine(self) -> list[str]:
        """The jobs the latest CPU-pressure decision paused (none after a resume)."""
        async with unit_of_work(self.host.sessions) as session:
            last = await EvolutionRepository(session).last_of("cpu_pressure")
        if last is None or last.action != "pause_background" or last.status != "taken":
            return []
        return [str(n) for n in last.inputs.get("paused", [])]

    async def _duplicate(self, p: Proposal) -> bool:
        since = utcnow() - timedelta(minutes=self.settings.evolution.cooldown_min)
        async with unit_of_work(self.host.sessions) as session:
            repo = EvolutionRepository(session)
            if await repo.awaiting(p.rule, p.action) is not None:
                return True
            last = await repo.last_of(p.rule, p.action)
        return last is not None and last.created_at >= since

    async def _decide(self, p: Proposal) -> DecisionOut:
        inputs = {**p.inputs, "reason": p.reason}
        if p.status is not None:
            status, outcome = p.status, p.reason
        elif p.action in NEEDS_APPROVAL and not self._automatic(p.action):
            status, outcome = "awaiting_approval", f"awaits an admin's approval: {p.reason}"
        else:
            status, outcome = await self._execute(p.action, inputs, p.targets, ACTOR, p.reason)
        async with unit_of_work(self.host.sessions) as session:
            row = await EvolutionRepository(session).add(
                EvolutionDecision(
                    rule=p.rule,
                    inputs=inputs,
                    action=p.action,
                    status=status,
                    outcome=outcome,
                    decided_by=ACTOR if status in ("taken", "failed") else None,
                    decided_at=utcnow() if status in ("taken", "failed") else None,
                )
            )
            out = decision_out(row)
        log.info("evolution: %s -> %s (%s): %s", p.rule, p.action, status, outcome)
        return out

    def _automatic(self, action: str) -> bool:
        return action == "rollback_adapter" and self.settings.evolution.auto_rollback

    # -- actions ----------------------------------------------------------------

    async def _execute(
        self, action: str, inputs: dict[str, Any], targets: list[str], actor: str, note: str
    ) -> tuple[str, str]:
        """Do ``action`` now: (status, outcome). ``inputs`` may gain what was done."""
        try:
            if action == "rollback_adapter":
                return await self._rollback(inputs, actor, note)
            if action in ("schedule_training", "schedule_consolidation"):
                return await self._trigger(targets, actor)
            if action == "pause_background":
                return await self._pause(inputs, targets, actor)
            if action == "resume_background":
                return await self._resume(targets, actor)
        except DomainError as exc:
            return "failed", exc.detail
        except Exception as exc:  # recorded, and the next pass goes on
            log.exception("evolution action %s failed", action)
            return "failed", f"{type(exc).__name__}: {exc}"
        return "failed", f"unknown action {action}"

    async def _rollback(self, inputs: dict[str, Any], actor: str, note: str) -> tuple[str, str]:
        registry = self.host.adapters
        if registry is None:
            return "failed", "the adapter registry is not running"
        expected = (inputs.get("active") or {}).get("version")
        pointer = await registry.pointer()
        now_active = pointer.active.id if pointer.active is not None else None
        if now_active != expected:
            return "failed", (
                f"the active adapter is now {now_active or 'none (base model)'}, not version "
                f"{expected}: nothing rolled back"
            )
        after = await registry.rollback(actor, f"evolution: {note}"[:500])
        to = f"version {after.active.id}" if after.active is not None else "the base model"
        return "taken", f"rolled back adapter version {expected}; {to} answers now"

    async def _trigger(self, jobs: list[str], actor: str) -> tuple[str, str]:
        scheduler = self.host.scheduler
        if scheduler is None:
            return "refused", SCHEDULER_OFF
        done, refused = [], []
        for name in jobs:
            try:
                run = await scheduler.trigger(name, actor)
                done.append(f"{name}: run {run.id} queued")
            except DomainError as exc:
                refused.append(f"{name}: {exc.detail}")
        return ("taken" if done else "refused"), "; ".join(done + refused)

    async def _pause(self, inputs: dict[str, Any], jobs: list[str], actor: str) -> tuple[str, str]:
        scheduler = self.host.scheduler
        if scheduler is None:
            return "refused", SCHEDULER_OFF + ": no background job runs"
        if not jobs:
            cfg = self.settings.scheduler
            return "taken", (
                "nothing paused: no idle-only job runs now, and the idle gate starts none "
                f"while CPU pressure is above {cfg.max_cpu_pressure} (PSI) or "
                f"{cfg.max_load_per_core} (load per core)"
            )
        for name in jobs:
            await scheduler.pause(name, actor)
        inputs["paused"] = list(jobs)
        return "taken", (
            f"paused {', '.join(jobs)} (they stop at their next step); resumed by this "
            "engine once CPU pressure is back under the limit"
        )

    async def _resume(self, jobs: list[str], actor: str) -> tuple[str, str]:
        scheduler = self.host.scheduler
        if scheduler is None:
            return "refused", SCHEDULER_OFF
        for name in jobs:
            await scheduler.resume(name, actor)
        return "taken", f"resumed {', '.join(jobs)}"

    # -- admins -----------------------------------------------------------------

    async def decisions(
        self, before: int | None = None, limit: int = 50, status: str | None = None
    ) -> DecisionPage:
        async with unit_of_work(self.host.sessions) as session:
            rows = await EvolutionRepository(session).page(before, limit + 1, status)
            items = [decision_out(r) for r in rows[:limit]]
        return DecisionPage(
            items=items, next_before=items[-1].id if len(rows) > limit and items else None
        )

    async def get(self, decision_id: int) -> DecisionOut:
        async with unit_of_work(self.host.sessions) as session:
            row = await EvolutionRepository(session).get(decision_id)
            if row is None:
                raise DecisionNotFound(f"no evolution decision {decision_id}")
            return decision_out(row)

    async def approve(self, decision_id: int, actor: str, note: str = "") -> DecisionOut:
        """Execute the awaiting action now (as ``actor``): approved, or failed."""
        row = await self._claim(decision_id, actor, note, "approved")
        inputs = dict(row.inputs)
        targets = [str(t) for t in inputs.get("jobs", [])]
        status, outcome = await self._execute(
            row.action, inputs, targets, actor, note or str(inputs.get("reason", ""))
        )
        final = "approved" if status == "taken" else status
        async with unit_of_work(self.host.sessions) as session:
            repo = EvolutionRepository(session)
            saved = await repo.get(decision_id)
            assert saved is not None
            saved.status, saved.outcome = final, outcome
            await repo.audit(actor, "evolution.executed", f"decision:{decision_id}", outcome[:500])
            return decision_out(saved)

    async def reject(self, decision_id: int, actor: str, note: str = "") -> DecisionOut:
        return await self._claim(decision_id, actor, note, "rejected")

    async def _claim(self, decision_id: int, actor: str, note: str, status: str) -> DecisionOut:
        """Move an awaiting decision to ``status`` (one admin wins), audited."""
        async with unit_of_work(self.host.sessions) as session:
            repo = EvolutionRepository(session)
            row = await repo.get(decision_id, lock=True)
            if row is None:
                raise DecisionNotFound(f"no evolution decision {decision_id}")
            if row.status != "awaiting_approval":
                raise DecisionStateConflict(
                    f"evolution decision {decision_id} is {row.status}: only a decision "
                    "awaiting approval can be approved or rejected"
                )
            row.status, row.decided_by, row.decided_at = status, actor[:64], utcnow()
            row.outcome = f"{status} by {actor}" + (f": {note}" if note else "")
            verb = "approve" if status == "approved" else "reject"
            await repo.audit(actor, f"evolution.{verb}", f"decision:{decision_id}", note[:500])
            return decision_out(row)
