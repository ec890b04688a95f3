"""`mongars backup PATH`: a consistent snapshot of a running server's state.

Order, and why the rows and the files agree: the database first, then the files. Every
file a row names (a dataset's folder, an adapter's ``<sha256>/adapter.gguf``, a
training run's folder) is written and fsynced before the row naming it is committed,
so a row in the snapshot had its files on disk before the snapshot began, and the
copy that follows finds them. Files written after the snapshot are taken too: orphans
the restored server never names. The other order would lose files: a row committed
between the file copy and the snapshot would name a file the backup lacks. One gap is
left: a file deleted between the snapshot and its copy (a dataset deleted, an adapter
pruned in that second); the backup lists each file that vanished. DBOS's own SQLite
file is taken after the main database: a job it holds that the snapshot lacks is
closed as lost at the next start, as after a crash.

Everything is staged in a hidden folder beside PATH and renamed into place at the end,
so PATH is a whole backup or absent. It holds the secret and the node keys: files are
0600, folders 0700."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mongars import __version__
from mongars.backup import contents, database, repository
from mongars.backup.errors import BackupRefused, BackupToolFailed
from mongars.backup.manifest import (
    DATA,
    DATABASE,
    FORMAT,
    MANIFEST,
    VERSION,
    DatabaseInfo,
    FileEntry,
    Manifest,
    copy_hashed,
    hash_file,
    make_dirs,
)
from mongars.backup.progress import Reporter, Silent
from mongars.settings import Settings

ARCHIVES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz"}


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.manifest.files)


def archive_mode(path: Path) -> str | None:
    """``tarfile`` write mode for an archive name; None: a directory backup."""
    name = path.name.lower()
    for suffix, mode in ARCHIVES.items():
        if name.endswith(suffix):
            return mode
    return None


def create_backup(
    settings: Settings, dest: Path, *, pg_bin: Path | None = None, reporter: Reporter | None = None
) -> BackupResult:
    reporter = reporter or Silent()
    dest = Path(os.path.abspath(dest.expanduser()))
    if dest.exists() or dest.is_symlink():
        raise BackupRefused(f"{dest} already exists: a backup never overwrites, name a new path")
    if not dest.parent.is_dir():
        raise BackupRefused(f"folder {dest.parent} does not exist")
    if dest.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BackupRefused(
            f"{dest} is inside the data dir: each backup would hold the previous ones; "
            "write it elsewhere"
        )
    db_file = database.sqlite_path(settings.resolved_database_url)
    if db_file is not None and not db_file.is_file():
        raise BackupRefused(
            f"no database at {db_file}: nothing to back up (check MONGARS_DATA_DIR and "
            "MONGARS_DATABASE_URL)"
        )
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    try:
        result = _stage(settings, staging, db_file, dest, pg_bin, reporter)
        _finish(staging, dest, result.manifest, reporter)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _stage(
    settings: Settings,
    staging: Path,
    db_file: Path | None,
    dest: Path,
    pg_bin: Path | None,
    reporter: Reporter,
) -> BackupResult:
    for folder in (DATABASE, DATA):
        (staging / folder).mkdir(mode=0o700)
    if db_file is not None:
        reporter.stage("database snapshot (SQLite online backup)", None)
        target = staging / DATABASE / "mongars.db"
        _snapshot(db_file, target, "the database")
        info = DatabaseInfo(kind="sqlite", path=f"{DATABASE}/mongars.db")
        revision = repository.sqlite_revision(target)
    else:
        reporter.stage("database dump (pg_dump)", None)
        target = staging / DATABASE / "postgres.dump"
        tool, server = database.pg_dump(settings.resolved_database_url, target, pg_bin)
        info = DatabaseInfo(
            kind="postgresql", path=f"{DATABASE}/postgres.dump", tool=tool, server_version=server
        )
        revision = database.dump_revision(target, int(tool.rsplit(" ", 1)[1]), pg_bin)
    sha, size = hash_file(target, Silent())
    files = [FileEntry(path=info.path, sha256=sha, size=size)]
    data_dir = settings.data_dir.resolve()
    skip = {p for p in (db_file, staging) if p is not None}
    items, notes = contents.plan(data_dir, skip)
    reporter.stage("data dir files", sum(i.size for i in items))
    for item in items:
        entry = _copy(data_dir, staging, item, reporter)
        if entry is None:
            notes.append(f"{item.relative} vanished during the backup")
        else:
            files.append(entry)
    manifest = Manifest(
        format=FORMAT,
        version=VERSION,
        created_at=datetime.now(UTC),
        mongars_version=__version__,
        alembic_revision=revision,
        database=info,
        source_data_dir=str(data_dir),
        files=files,
    )
    fd = os.open(staging / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(manifest.model_dump_json(indent=1))
    return BackupResult(dest, manifest, notes)


def _snapshot(source: Path, target: Path, what: str) -> None:
    try:
        database.snapshot_sqlite(source, target)
    except sqlite3.Error as exc:
        if not source.exists():
            raise FileNotFoundError(source) from exc
        raise BackupToolFailed(f"cannot snapshot {what} ({source}): {exc}") from exc


def _copy(
    data_dir: Path, staging: Path, item: contents.Item, reporter: Reporter
) -> FileEntry | None:
    source = data_dir / item.relative
    target = staging / DATA / item.relative
    make_dirs(staging / DATA, target.parent)
    try:
        if item.sqlite:
            _snapshot(source, target, item.relative)
            sha, size = hash_file(target, reporter)
        else:
            with source.open("rb") as f:
                sha, size = copy_hashed(f, target, reporter)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        return None
    return FileEntry(path=f"{DATA}/{item.relative}", sha256=sha, size=size)


def _finish(staging: Path, dest: Path, manifest: Manifest, reporter: Reporter) -> None:
    mode = archive_mode(dest)
    if mode is None:
        staging.chmod(0o700)
        os.rename(staging, dest)  # the caller's cleanup then finds nothing to remove
        return
    reporter.stage(f"writing {dest.name}", sum(f.size for f in manifest.files))
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(fd)
    try:
        with tarfile.open(tmp, mode) as tar:  # type: ignore[call-overload]
            tar.add(staging / MANIFEST, MANIFEST, filter=_anonymous)
            for entry in manifest.files:
                tar.add(staging / entry.path, entry.path, recursive=False, filter=_anonymous)
                reporter.advance(entry.size)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.link(tmp, dest)  # fails rather than replace a file that appeared meanwhile
    finally:
        os.unlink(tmp)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info
