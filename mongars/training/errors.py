"""The learning loop's domain errors (mapped to HTTP by mongars.errors, like all others)."""

from __future__ import annotations

from mongars.errors import Conflict, DomainError


class DatasetNotTrainable(DomainError):
    """Empty, quarantined or flagged: training on it is refused."""

    status, code = 409, "dataset_not_trainable"


class TrainingBusy(Conflict):
    """One training run at a time on a machine."""

    code = "training_busy"


class RunStateConflict(Conflict):
    """Pausing a finished run, resuming a running one..."""

    code = "run_state"


class InsufficientStorage(Conflict):
    code = "insufficient_storage"


class CheckpointCorrupt(Conflict):
    code = "checkpoint_corrupt"
