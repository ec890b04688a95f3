"""The evolution engine's domain errors (mapped to HTTP by mongars.errors)."""

from __future__ import annotations

from mongars.errors import Conflict, NotFound


class DecisionNotFound(NotFound):
    code = "decision_not_found"


class DecisionStateConflict(Conflict):
    """Approving or rejecting a decision that does not await approval."""

    code = "decision_state"
