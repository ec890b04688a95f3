"""Jobs and their runs, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RunState = Literal[
    "queued", "running", "cancelling", "succeeded", "failed", "cancelled", "paused", "yielded"
]


class JobRunOut(BaseModel):
    id: str
    name: str
    trigger: Literal["schedule", "idle", "manual"]
    state: RunState
    steps: int
    progress: str = Field(description="the last step's own words")
    result: dict[str, Any] = Field(description="what the run did: counts added over its steps")
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    cpu_s: float
    energy_wh: float
    energy_method: Literal["rapl", "estimate"]


class JobOut(BaseModel):
    name: str
    description: str
    schedule: str | None = Field(description="cron; null: the idle cycle or by hand")
    idle_only: bool
    state: Literal["idle", "running", "paused", "disabled"]
    last_run: JobRunOut | None
    next_run: datetime | None = Field(description="next cron time; null for idle-only jobs")


class JobList(BaseModel):
    items: list[JobOut]
    leader: bool = Field(description="whether this process runs the jobs")
    idle: bool = Field(description="whether the idle gate is open now")
    idle_reason: str


class JobRunPage(BaseModel):
    items: list[JobRunOut]
    next_cursor: str | None
