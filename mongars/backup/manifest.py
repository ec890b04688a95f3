"""``manifest.json``: what a backup holds, each file with its sha256 and size.

A backup is ``manifest.json`` plus ``database/<file>`` (the SQLite snapshot or the
``pg_dump`` archive) and ``data/<path>`` (the data dir's files). Restore trusts nothing
in it until the manifest parses, every path is a plain relative one under those two
folders, and every file's hash matches."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from alembic.script import ScriptDirectory
from pydantic import BaseModel, Field, ValidationError, model_validator

from mongars.backup.errors import BackupTooNew, DamagedBackup
from mongars.backup.progress import Reporter

FORMAT = "mongars-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATA = "data"
DATABASE = "database"
CHUNK = 1024 * 1024
_SAFE_PART = re.compile(r"^[^\x00-\x1f/\\]{1,255}$")


class FileEntry(BaseModel):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class DatabaseInfo(BaseModel):
    kind: Literal["sqlite", "postgresql"]
    path: str  # the entry holding it: database/mongars.db or database/postgres.dump
    tool: str | None = None  # "pg_dump (PostgreSQL) 18.1" for a dump
    server_version: int | None = None  # PostgreSQL's server_version_num


class Manifest(BaseModel):
    format: Literal["mongars-backup"]
    version: int
    created_at: datetime
    mongars_version: str
    alembic_revision: str | None
    database: DatabaseInfo
    source_data_dir: str  # absolute: restore rewrites it in files that name it
    files: list[FileEntry]

    @model_validator(mode="after")
    def _paths(self) -> Manifest:
        seen: set[str] = set()
        for entry in self.files:
            check_path(entry.path)
            if entry.path in seen:
                raise ValueError(f"{entry.path} is listed twice")
            seen.add(entry.path)
        if self.database.path not in seen or not self.database.path.startswith(DATABASE + "/"):
            raise ValueError(f"the database entry {self.database.path!r} is not a listed file")
        return self

    def by_path(self) -> dict[str, FileEntry]:
        return {e.path: e for e in self.files}


def check_path(path: str) -> None:
    """A member name we would write: relative, normalised, under data/ or database/."""
    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or len(parts) < 2
        or parts[0] not in (DATA, DATABASE)
        or str(PurePosixPath(*parts)) != path
        or any(p in (".", "..") or not _SAFE_PART.match(p) for p in parts)
    ):
        raise ValueError(f"unsafe or unexpected path {path[:200]!r}")


def parse(raw: bytes) -> Manifest:
    """The manifest, or DamagedBackup saying why this is not one we can restore."""
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        if any(e["loc"] == ("format",) for e in exc.errors()):
            raise DamagedBackup(
                f"not a monGARS backup (manifest.json has no format '{FORMAT}')"
            ) from None
        raise DamagedBackup(f"manifest.json is invalid: {where}: {first['msg']}") from None
    if manifest.version > VERSION:
        raise BackupTooNew(
            f"backup format version {manifest.version} is newer than this monGARS reads "
            f"({VERSION}): restore with the monGARS that made it or a newer one"
        )
    return manifest


def check_revision(revision: str | None, script: ScriptDirectory) -> None:
    """Older revisions are fine (the server migrates at start); unknown ones are newer."""
    if revision is None:
        return
    if revision not in {r.revision for r in script.walk_revisions()}:
        heads = ", ".join(script.get_heads())
        raise BackupTooNew(
            f"the backup's database is at migration {revision!r}, which this monGARS "
            f"(head {heads}) does not know: restore it with a newer monGARS"
        )


def make_dirs(root: Path, folder: Path) -> None:
    """``folder`` and its parents up to ``root``, each 0700."""
    missing: list[Path] = []
    while folder != root and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)


def copy_hashed(source: IO[bytes], target: Path, reporter: Reporter) -> tuple[str, int]:
    """Write ``source`` to a new file ``target`` (mode 0600, fsynced); its sha256 and size."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            reporter.advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def hash_stream(source: IO[bytes], reporter: Reporter) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        reporter.advance(len(chunk))
    return digest.hexdigest(), size


def hash_file(path: Path, reporter: Reporter) -> tuple[str, int]:
    with path.open("rb") as f:
        return hash_stream(f, reporter)
