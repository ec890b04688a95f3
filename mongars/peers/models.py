"""Paired nodes, invites, seen nonces and received messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mongars.db.base import Base, UTCDateTime, utcnow


class Peer(Base):
    """Another node, as this node knows it.

    States: ``requested`` (it asked to pair here; an admin approves or rejects),
    ``pending`` (we joined its invite; it has not approved yet), ``paired``,
    ``rejected``, ``revoked`` (either side ended it) and ``quarantined`` (a
    signature, hash or spot-check failure: an admin must act)."""

    __tablename__ = "peers"

    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), index=True)
    # Public keys, urlsafe base64 of the raw 32 bytes; ``kid`` names the signing key.
    sign_key: Mapped[str] = mapped_column(String(64))
    kid: Mapped[str] = mapped_column(String(64), index=True)
    enc_key: Mapped[str] = mapped_column(String(64))
    # Keys it rotated away from, still accepted until they expire: [{kid, key, expires_at}].
    old_keys: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tls_fingerprint: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Same owner as this node: only such peers receive user data or adapters.
    same_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    telemetry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Reputation, kept here only: EWMA of success (0..1) and of latency.
    success_ewma: Mapped[float] = mapped_column(Float, default=1.0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PeerInvite(Base):
    """A single-use pairing secret this node handed out (only its hash is kept)."""

    __tablename__ = "peer_invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    same_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class PeerNonce(Base):
    """A signature nonce already accepted; kept until its signature has expired."""

    __tablename__ = "peer_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PeerMessage(Base):
    """A message a paired peer sent to ``/api/v1/peer/message`` (decrypted; admins only)."""

    __tablename__ = "peer_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
