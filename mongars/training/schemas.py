"""Training API shapes: curation policies, datasets and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DatasetPolicy(BaseModel):
    """Which answers become training records. Unset fields take the server's defaults
    (MONGARS_TRAINING__*)."""

    model_config = ConfigDict(extra="forbid")

    include_rated_up: bool = True
    include_corrected: bool = Field(True, description="the correction becomes the target")
    include_unrated: bool | None = Field(
        None, description="unrated answers whose confidence reaches min_confidence"
    )
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    since: datetime | None = Field(None, description="only turns from this time on")
    limit: int | None = Field(None, ge=1, description="newest turns first; default max_records")
    held_out_share: float | None = Field(None, ge=0.0, lt=1.0)
    min_records: int | None = Field(None, ge=1)


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: DatasetPolicy = DatasetPolicy()


class Violation(BaseModel):
    code: Literal["pii_remaining", "too_few_records", "consent_withdrawn", "past_retention"]
    detail: str
    records: list[int] = Field(default_factory=list, description="record indexes, when known")


class DatasetOut(BaseModel):
    id: str
    status: Literal["approved", "quarantined"]
    records: int
    held_out: int
    sha256: str
    violations: list[Violation]
    policy: dict[str, Any]
    scrubber_version: str
    created_at: datetime
    # Built from turns a user has since forgotten (or deleted): train no new adapter on it.
    flagged: bool = False
    forgotten_records: int = 0


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(min_length=1, max_length=32)
    objective: Literal["sft", "mntp"] = "sft"
    max_steps: int | None = Field(None, ge=1, le=100_000)


RunStatus = Literal["queued", "running", "pausing", "paused", "completed", "failed", "cancelled"]


class RunOut(BaseModel):
    id: str
    dataset_id: str
    dataset_sha256: str
    objective: str
    status: RunStatus
    step: int
    total_steps: int
    progress: float = Field(description="0..1")
    loss: float | None
    eta_s: float | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    perplexity_base: float | None = None
    perplexity_adapter: float | None = None
    adapter_sha256: str | None
    mlflow_run_id: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # The dataset has forgotten turns in it (or is gone): this adapter learnt from them.
    dataset_flagged: bool = False


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None
