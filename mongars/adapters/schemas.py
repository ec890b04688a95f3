"""What the adapters API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

State = Literal["candidate", "approved", "rejected", "active", "retired", "pruned"]


class GateReason(BaseModel):
    code: str
    detail: str
    figure: Any = None
    limit: Any = None


class AdapterOut(BaseModel):
    id: int
    sha256: str
    size_bytes: int
    run_id: str
    dataset_id: str
    dataset_sha256: str
    base_model: str
    state: State
    metrics: dict[str, Any]
    gate: list[GateReason] = Field(description="why it needs a human (empty: it passed)")
    note: str
    decided_by: str | None
    decided_at: datetime | None
    activated_at: datetime | None
    created_at: datetime
    canary: bool = False


class AdapterPage(BaseModel):
    items: list[AdapterOut]
    next_before: int | None = Field(description="pass as ?before= for the next page")


class Decision(BaseModel):
    note: str = Field(default="", max_length=2000)


class Prune(BaseModel):
    keep: int = Field(default=5, ge=0, le=1000, description="newest retired versions kept")


class Pruned(BaseModel):
    pruned: list[int]


class RegisterRun(BaseModel):
    run_id: str = Field(min_length=1, max_length=32)


class CanaryStart(BaseModel):
    share: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="of turns (default MONGARS_TRAINING__CANARY_SHARE)",
    )
    note: str = Field(default="", max_length=2000)


class PointerOut(BaseModel):
    active: AdapterOut | None
    canary: AdapterOut | None
    canary_share: float
    generation: int
    updated_at: datetime
    provider_loads_adapters: bool


class ChangeOut(BaseModel):
    id: int
    action: str
    from_id: int | None
    to_id: int | None
    actor: str
    note: str
    at: datetime


class VersionFigures(BaseModel):
    """One version's answers over the window (``version`` null: the base model)."""

    version: int | None
    turns: int
    thumbs_down: int
    thumbs_up: int
    thumbs_down_rate: float | None
    thumbs_down_ci: tuple[float, float]
    confidence_mean: float | None
    confidence_ci: tuple[float | None, float | None]
    latency_ms_mean: float | None
    latency_ms_ci: tuple[float | None, float | None]


class Comparison(BaseModel):
    since: datetime
    active: int | None
    canary: int | None
    versions: list[VersionFigures]
    # One-sided p-value that the canary's thumbs-down rate is higher than the active's.
    canary_worse_p: float | None
