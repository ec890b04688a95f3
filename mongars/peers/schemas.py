"""Request and response bodies of the peer routes (reference v1 field names kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mongars.adapters.schemas import AdapterOut

NodeId = Field(min_length=26, max_length=26, pattern=r"^[a-z2-7]{26}$")


class InviteCreate(BaseModel):
    same_owner: bool = False  # the joining node may receive user data and adapters
    ttl_s: float | None = Field(default=None, gt=0, le=7 * 86400)


class Invite(BaseModel):
    """What an invite string carries (``mgi1.`` + base64url of this, as JSON)."""

    v: int = 1
    url: str = Field(min_length=8, max_length=500)
    node_id: str = Field(pattern=r"^[a-z2-7]{26}$")
    sign_key: str = Field(min_length=43, max_length=43)
    enc_key: str = Field(min_length=43, max_length=43)
    tls_fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    secret: str = Field(min_length=16, max_length=200)
    expires_at: int


class InviteOut(BaseModel):
    invite: str
    expires_at: datetime


class JoinRequest(BaseModel):
    invite: str = Field(min_length=8, max_length=8192)
    same_owner: bool = False


class PeerState(BaseModel):
    node_id: str
    state: str


class PeerOut(BaseModel):
    node_id: str
    url: str
    state: str
    same_owner: bool
    kid: str
    tls_fingerprint: str | None
    last_seen_at: datetime | None
    latency_ms: float | None
    healthy: bool
    load: float | None
    reputation: float
    failures: int
    banned_until: datetime | None
    telemetry: dict[str, Any]
    # Work items handed to this peer since this process started, by kind.
    work_sent: dict[str, int] = Field(default_factory=dict)
    created_at: datetime
    paired_at: datetime | None
    note: str


class NodeOut(BaseModel):
    node_id: str
    url: str
    kid: str
    signing_key: str
    encryption_key: str
    peers_enabled: bool


class PeerDecision(BaseModel):
    """An admin's decision on a peer, with an optional note."""

    note: str = Field(default="", max_length=1000)


class SendMessage(BaseModel):
    payload: dict[str, Any]


class PeerMessageOut(BaseModel):
    id: int
    node_id: str
    payload: dict[str, Any]
    received_at: datetime


# -- peer-to-peer bodies (signed) ------------------------------------------------


class PairRequest(BaseModel):
    secret: str = Field(min_length=16, max_length=200)
    node_id: str = NodeId
    url: str = Field(min_length=8, max_length=500)
    sign_key: str = Field(min_length=43, max_length=43)
    enc_key: str = Field(min_length=43, max_length=43)
    tls_fingerprint: str | None = Field(default=None, max_length=100)


class PairAnswer(BaseModel):
    decision: Literal["approved", "rejected", "revoked"]


class RotateKey(BaseModel):
    sign_key: str = Field(min_length=43, max_length=43)
    endorsement: str = Field(min_length=20, max_length=200)


class Telemetry(BaseModel):
    """What a node reports of itself every few seconds."""

    scheduler_id: str | None = None
    queue_depth: int = Field(default=0, ge=0)
    active_workers: int = Field(default=0, ge=0)
    concurrency: int = Field(default=0, ge=0)
    load_factor: float = Field(default=0.0, ge=0.0)
    worker_uptime_seconds: float = Field(default=0.0, ge=0.0)
    tasks_processed: int = Field(default=0, ge=0)
    tasks_failed: int = Field(default=0, ge=0)
    task_failure_rate: float = Field(default=0.0, ge=0.0)
    observed_at: datetime | None = None
    source: str | None = Field(default=None, max_length=2048)
    # Added: CPU pressure (1-minute load per core), models, adapter, version, energy.
    cpu_pressure: float = Field(default=0.0, ge=0.0)
    models: list[str] = Field(default_factory=list, max_length=50)
    adapter: str | None = Field(default=None, max_length=64)
    version: str = Field(default="", max_length=50)
    energy_wh_24h: float = Field(default=0.0, ge=0.0)
    # Work this node takes from peers ("chat", "embed").
    accepts: list[str] = Field(default_factory=list, max_length=10)


# -- reference v1 routes ---------------------------------------------------------


class PeerRegistration(BaseModel):
    url: str = Field(min_length=8, max_length=500)


class RegistrationOut(BaseModel):
    status: str
    count: int


class PeerLoadSnapshot(BaseModel):
    scheduler_id: str | None = None
    queue_depth: int = 0
    active_workers: int = 0
    concurrency: int = 0
    load_factor: float = 0.0


class PeerTelemetryEnvelope(BaseModel):
    telemetry: list[Telemetry] = Field(default_factory=list)


class EncryptedMessage(BaseModel):
    payload: str = Field(min_length=1, max_length=1_000_000)


class WorkItem(BaseModel):
    """Delegated work: an idempotency key and the request sealed to the worker."""

    key: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    sealed: str = Field(min_length=1, max_length=16_000_000)


class FileOffset(BaseModel):
    offset: int = Field(default=0, ge=0, le=2**40)


class PullRequest(BaseModel):
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Skipped(BaseModel):
    adapter: str
    reason: str


class PullOut(BaseModel):
    installed: list[AdapterOut]
    skipped: list[Skipped]
