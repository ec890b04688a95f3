"""The evolution engine's API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["taken", "awaiting_approval", "approved", "rejected", "failed", "refused"]
STATUSES: tuple[str, ...] = (
    "taken",
    "awaiting_approval",
    "approved",
    "rejected",
    "failed",
    "refused",
)


class DecisionOut(BaseModel):
    id: int
    created_at: datetime
    rule: str
    inputs: dict[str, Any]
    action: str
    status: Status
    outcome: str
    decided_by: str | None
    decided_at: datetime | None


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    next_before: int | None = None


class DecisionNote(BaseModel):
    note: str = Field(default="", max_length=500)


class DiagnoseOut(BaseModel):
    diagnostics: dict[str, Any]
    decisions: list[DecisionOut]
