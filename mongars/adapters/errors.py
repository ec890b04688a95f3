"""The adapter registry's domain errors (mapped to HTTP by mongars.errors)."""

from __future__ import annotations

from mongars.errors import Conflict, NotFound


class AdapterNotFound(NotFound):
    pass


class AdapterStateConflict(Conflict):
    """Activating a candidate, approving an active version, rolling back nothing..."""

    code = "adapter_state"


class AdapterDamaged(Conflict):
    """The file is missing or its sha256 is not the version's."""

    code = "adapter_damaged"
