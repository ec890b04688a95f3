"""/api/v1/evolution: the engine's decisions, the figures now, a pass on demand, and
approving or rejecting what awaits an admin (admin only; docs/evolution.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from mongars.deps import AdminUser, RuntimeDep
from mongars.errors import FeatureDisabled
from mongars.evolution.schemas import DecisionNote, DecisionOut, DecisionPage, DiagnoseOut
from mongars.evolution.service import EvolutionEngine

router = APIRouter(prefix="/api/v1/evolution", tags=["evolution"])

DecisionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=200)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
StatusFilter = Annotated[
    Literal["taken", "awaiting_approval", "approved", "rejected", "failed", "refused"] | None,
    Query(),
]


def get_engine(runtime: RuntimeDep) -> EvolutionEngine:
    if runtime.evolution is None:  # pragma: no cover - always built by the app
        raise FeatureDisabled("the evolution engine is not running")
    return runtime.evolution


Engine = Annotated[EvolutionEngine, Depends(get_engine)]


@router.get("/decisions", response_model=DecisionPage)
async def list_decisions(
    admin: AdminUser,
    engine: Engine,
    before: Before = None,
    limit: Limit = 50,
    status: StatusFilter = None,
) -> DecisionPage:
    """Every decision, newest first: rule, inputs (the figures), action, status, outcome."""
    return await engine.decisions(before, limit, status)


@router.get("/decisions/{decision_id}", response_model=DecisionOut)
async def get_decision(admin: AdminUser, engine: Engine, decision_id: DecisionId) -> DecisionOut:
    return await engine.get(decision_id)


@router.get("/diagnostics")
async def diagnostics(admin: AdminUser, engine: Engine) -> dict[str, object]:
    """The figures the rules read, measured now (nothing is decided)."""
    return (await engine.diagnostics()).as_dict()


@router.post("/diagnose", response_model=DiagnoseOut)
async def diagnose(admin: AdminUser, engine: Engine) -> DiagnoseOut:
    """A pass now: the figures and the decisions it recorded (none when nothing fired,
    or what fired is deduplicated or cooling down)."""
    made = await engine.diagnose()
    figures = engine.last.as_dict() if engine.last is not None else {}
    return DiagnoseOut(diagnostics=figures, decisions=made)


@router.post("/decisions/{decision_id}/approve", response_model=DecisionOut)
async def approve(
    admin: AdminUser, engine: Engine, decision_id: DecisionId, body: DecisionNote
) -> DecisionOut:
    """Execute the awaiting action now (a rollback through the adapter registry)."""
    return await engine.approve(decision_id, admin.username, body.note)


@router.post("/decisions/{decision_id}/reject", response_model=DecisionOut)
async def reject(
    admin: AdminUser, engine: Engine, decision_id: DecisionId, body: DecisionNote
) -> DecisionOut:
    return await engine.reject(decision_id, admin.username, body.note)
