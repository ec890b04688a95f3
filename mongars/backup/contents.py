"""Which of the data dir's files a backup takes, and how.

Everything is taken unless a rule below leaves it out, so a feature that stores a new
kind of file is backed up without anyone remembering to add it. Taken: the signing
secret (``secret_key``), ``node_id``, ``node_keys/`` (this node's identity for its
peers), ``datasets/``, ``adapters/`` (the files rows name by sha256, and the manifest
Serve reads), ``training/runs/`` (specs, logs, checkpoints a paused run resumes from,
adapters not yet registered), ``mlflow/`` (runs' metrics and artifacts), ``audit/``,
and DBOS's ``scheduler.sqlite``. Any SQLite file (found by its header, whatever its
name) is copied through SQLite's online backup API, never byte by byte, since a live
one may be mid-write.

Left out: ``models/`` (GGUF and ONNX files prepared again from the installed packages,
hashes checked), ``cache/`` (the memory cache refills itself), lock files (they belong
to running processes), SQLite's ``-wal``/``-shm``/``-journal`` files (the snapshot is
whole without them), hidden and ``*.tmp`` entries (writers' temporary files: adapter
imports, checkpoints being written, replication downloads), symlinks (a backup never
reaches outside the data dir), and the database when it lives in the data dir (its
snapshot is taken apart)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"
SKIPPED_DIRS = {"models", "cache"}  # top level only
SKIPPED_SUFFIXES = (".lock", ".tmp", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Item:
    relative: str  # posix path inside the data dir
    size: int
    sqlite: bool


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def plan(data_dir: Path, skip: set[Path]) -> tuple[list[Item], list[str]]:
    """The files to take (sorted) and what was left out that a reader may wonder about."""
    items: list[Item] = []
    notes: list[str] = []
    if not data_dir.is_dir():
        return items, notes
    for folder, dirs, files in os.walk(data_dir):
        here = Path(folder)
        top = here == data_dir
        for name in sorted(dirs):
            path = here / name
            if (
                name.startswith(".")
                or (top and name in SKIPPED_DIRS)
                or path.is_symlink()
                or path in skip
            ):
                dirs.remove(name)
                if path.is_symlink():
                    notes.append(f"symlink {path.relative_to(data_dir)} not followed")
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or name.endswith(SKIPPED_SUFFIXES) or path in skip:
                continue
            if path.is_symlink() or not path.is_file():
                notes.append(f"{path.relative_to(data_dir)} is not a regular file: left out")
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # removed since the listing
                continue
            items.append(Item(path.relative_to(data_dir).as_posix(), size, is_sqlite(path)))
    items.sort(key=lambda i: i.relative)
    return items, notes
