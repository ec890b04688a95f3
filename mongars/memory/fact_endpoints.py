"""Facts over HTTP: the user's facts (current and past) and failed extractions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mongars.deps import CurrentUser, RuntimeDep
from mongars.errors import FeatureDisabled
from mongars.memory.repository import MemoryRepository

router = APIRouter(prefix="/api/v1/memory/facts", tags=["memory"])


class FactOut(BaseModel):
    id: int
    subject: str | None
    text: str
    valid_from: datetime | None
    invalid_at: datetime | None
    source_ids: list[int]


class FailureOut(BaseModel):
    memory_id: int
    turn_id: int | None
    error: str | None


def _require_facts(runtime: RuntimeDep) -> None:
    if runtime.memory is None or not runtime.settings.memory.facts:
        raise FeatureDisabled("fact memory is off on this server (MONGARS_MEMORY__FACTS=true)")


@router.get("", response_model=list[FactOut])
async def list_facts(
    user: CurrentUser,
    runtime: RuntimeDep,
    include_past: Annotated[bool, Query(description="also facts no longer valid")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FactOut]:
    _require_facts(runtime)
    async with runtime.sessions() as session:
        rows = await MemoryRepository(session).facts(user.id, include_past, limit)
    return [
        FactOut(
            id=m.id,
            subject=m.subject,
            text=m.text,
            valid_from=m.valid_from,
            invalid_at=m.invalid_at,
            source_ids=m.source_ids,
        )
        for m in rows
    ]


@router.get("/failures", response_model=list[FailureOut])
async def fact_failures(
    user: CurrentUser, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[FailureOut]:
    """Turns whose fact extraction failed, with the reason."""
    _require_facts(runtime)
    async with runtime.sessions() as session:
        rows = await MemoryRepository(session).facts_failed(user.id, limit)
    return [FailureOut(memory_id=m.id, turn_id=m.turn_id, error=m.facts_error) for m in rows]
