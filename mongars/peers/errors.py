"""Peer-mesh errors (mapped to HTTP in mongars.errors' one handler)."""

from __future__ import annotations

from mongars.errors import DomainError


class PeerFailed(DomainError):
    """The other node refused or could not be reached: 502, with its reason."""

    status, code = 502, "peer_failed"
