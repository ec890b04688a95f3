"""`mongars restore PATH`: a backup into an empty data dir (and an empty database).

Everything is checked before anything is written: the manifest, the migration (an
older one is fine: the server migrates at start; one this code does not know is
refused), the database kind, an empty target, every file's sha256. Then the files go
into a hidden folder beside the data dir, the database into its place (``pg_restore``
in one transaction), and the folder is renamed to the data dir: it appears whole or
not at all. A few files name the data dir's absolute path (training runs' specs, the
adapter manifest, MLflow's artifact locations): restoring into another path rewrites
them."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory

from mongars.backup import archive, database, repository
from mongars.backup.errors import BackupRefused
from mongars.backup.manifest import DATA, Manifest, check_revision
from mongars.backup.progress import Reporter, Silent
from mongars.db.migrate import alembic_config
from mongars.settings import Settings

# Files that hold the data dir's absolute path (JSON, rewritten on a move).
PATH_FILES = ("training/runs/*/spec.json", "adapters/adapter_manifest.json")
MLFLOW_DB = "mlflow/mlflow.db"
_TOOL_MAJOR = re.compile(r"(\d+)$")


@dataclass
class RestoreResult:
    data_dir: Path
    manifest: Manifest
    relocated: bool
    notes: list[str]


def restore_backup(
    settings: Settings,
    source: Path,
    *,
    pg_bin: Path | None = None,
    reporter: Reporter | None = None,
) -> RestoreResult:
    reporter = reporter or Silent()
    data_dir = settings.data_dir.expanduser().resolve()  # as the server names its files
    check_target(data_dir)
    db_file = database.sqlite_path(settings.resolved_database_url)
    with archive.open_backup(Path(os.path.abspath(source.expanduser()))) as reader:
        manifest = archive.read_manifest(reader)
        check_revision(manifest.alembic_revision, ScriptDirectory.from_config(alembic_config("")))
        _check_database(manifest, settings, db_file, data_dir)
        total = sum(f.size for f in manifest.files)
        reporter.stage("verifying every file's sha256", total)
        archive.verify(reader, manifest, reporter)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=f".{data_dir.name}.restore-"))
        try:
            reporter.stage("restoring files", total)
            archive.extract(reader, manifest, staging, reporter)
            (staging / DATA).mkdir(mode=0o700, exist_ok=True)
            relocated, notes = relocate(staging / DATA, manifest.source_data_dir, str(data_dir))
            _place_database(manifest, settings, db_file, data_dir, staging, pg_bin, reporter)
            check_target(data_dir)  # still empty: nobody started a server meanwhile
            os.rename(staging / DATA, data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(data_dir, manifest, relocated, notes)


def check_target(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupRefused(
            f"data dir {data_dir} is not empty: restore only into a new or empty folder "
            "(MONGARS_DATA_DIR)"
        )


def _check_database(
    manifest: Manifest, settings: Settings, db_file: Path | None, data_dir: Path
) -> None:
    kind = manifest.database.kind
    if kind == "sqlite" and db_file is None:
        raise BackupRefused(
            "this backup holds a SQLite database but MONGARS_DATABASE_URL names PostgreSQL: "
            "unset it to restore into the data dir (moving between the two is no restore)"
        )
    if kind == "postgresql" and db_file is not None:
        raise BackupRefused(
            "this backup holds a PostgreSQL dump: set MONGARS_DATABASE_URL to a new, empty "
            "PostgreSQL database to restore it into"
        )
    if db_file is not None and not db_file.is_relative_to(data_dir) and db_file.exists():
        raise BackupRefused(f"database file {db_file} exists: restore only into a new one")
    if kind == "postgresql":
        database.check_empty_pg(settings.resolved_database_url)


def _place_database(
    manifest: Manifest,
    settings: Settings,
    db_file: Path | None,
    data_dir: Path,
    staging: Path,
    pg_bin: Path | None,
    reporter: Reporter,
) -> None:
    staged = staging / manifest.database.path
    if db_file is None:
        reporter.stage("pg_restore (one transaction)", None)
        major = _TOOL_MAJOR.search(manifest.database.tool or "")
        needed = int(major.group(1)) if major else 0
        database.pg_restore(settings.resolved_database_url, staged, needed, pg_bin)
    elif db_file.is_relative_to(data_dir):
        target = staging / DATA / db_file.relative_to(data_dir)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(staged, target)
    else:  # a SQLite file outside the data dir (MONGARS_DATABASE_URL)
        db_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=db_file.parent, prefix=f".{db_file.name}.")
        os.close(fd)
        try:
            shutil.copyfile(staged, tmp)
            os.link(tmp, db_file)  # fails rather than replace a file that appeared
        finally:
            os.unlink(tmp)


def relocate(root: Path, old: str, new: str) -> tuple[bool, list[str]]:
    """Rewrite the old data dir's absolute path to the new one where files keep it; a
    file that cannot be rewritten is restored as it was, with a note."""
    if old == new:
        return False, []
    notes: list[str] = []
    before, after = old.rstrip("/") + "/", new.rstrip("/") + "/"
    for pattern in PATH_FILES:
        for path in root.glob(pattern):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                notes.append(f"{path.relative_to(root)} is not JSON: its paths were not moved")
                continue
            path.write_text(json.dumps(_moved(data, before, after), indent=2), encoding="utf-8")
    mlflow = root / MLFLOW_DB
    if mlflow.is_file():
        try:
            repository.relocate_mlflow(mlflow, before, after)
        except sqlite3.Error as exc:
            notes.append(f"{MLFLOW_DB}: artifact paths not moved ({exc})")
    return True, notes


def _moved(value: Any, before: str, after: str) -> Any:
    if isinstance(value, str):
        return value.replace(before, after)
    if isinstance(value, list):
        return [_moved(v, before, after) for v in value]
    if isinstance(value, dict):
        return {k: _moved(v, before, after) for k, v in value.items()}
    return value
