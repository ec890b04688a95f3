"""Why a backup or a restore was refused (domain errors: the CLI prints one line)."""

from __future__ import annotations

from mongars.errors import Conflict, DomainError


class BackupRefused(Conflict):
    """The target is not empty, the output already exists, the kinds do not match..."""

    code = "backup_refused"


class DamagedBackup(DomainError):
    """Not a monGARS backup, a file whose sha256 differs, a hostile archive member."""

    status, code = 422, "backup_damaged"


class BackupTooNew(Conflict):
    """Made by a monGARS whose migrations this one does not know."""

    code = "backup_too_new"


class BackupToolFailed(DomainError):
    """pg_dump / pg_restore missing or failing, or the database unreachable."""

    status, code = 503, "backup_tool_failed"
