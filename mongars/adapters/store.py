"""Adapter files, immutable and content-addressed, and ``adapter_manifest.json``.

``<data_dir>/adapters/<sha256>/adapter.gguf``: a version's file never changes, so any
process (an API worker, a Ray replica on the same storage) can load it by its hash and
check it. The manifest (``{current, history, updated_at}``, the seed's format) is for
tools and Serve applications started without a database; it is written to a temporary
file, fsynced and renamed, so a reader sees the old one or the new one, never half."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mongars.training.spec import file_sha256

FILE = "adapter.gguf"
MANIFEST = "adapter_manifest.json"


class DamagedAdapter(Exception):
    """The file is missing or its sha256 is not its name."""


def root(data_dir: Path) -> Path:
    return data_dir / "adapters"


def adapter_path(data_dir: Path, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise DamagedAdapter(f"not an adapter sha256: {sha256[:80]!r}")
    return root(data_dir) / sha256 / FILE


def import_file(data_dir: Path, source: Path) -> tuple[str, int]:
    """Copy ``source`` into the store; its sha256 and size. Idempotent: a file already
    stored under the same hash is checked, not copied again."""
    folder = root(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".import-") as tmp:
        staged = Path(tmp) / FILE
        shutil.copyfile(source, staged)
        with staged.open("rb") as f:
            os.fsync(f.fileno())
        sha = file_sha256(staged)
        final = folder / sha
        if not final.exists():
            staged.parent.rename(final)
            Path(tmp).mkdir()  # TemporaryDirectory removes what it made
        else:
            verify(data_dir, sha)
    return sha, (final / FILE).stat().st_size


def verify(data_dir: Path, sha256: str) -> Path:
    """The file of version ``sha256``, after checking it still is what it was."""
    path = adapter_path(data_dir, sha256)
    if not path.is_file():
        raise DamagedAdapter(f"adapter file {path} is missing")
    actual = file_sha256(path)
    if actual != sha256:
        raise DamagedAdapter(
            f"adapter file {path} is damaged: its sha256 is {actual}, not {sha256}"
        )
    return path


def write_manifest(data_dir: Path, current: dict[str, Any] | None, history: list[Any]) -> Path:
    """``{current, history, updated_at}``, atomically."""
    folder = root(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    body = {"current": current, "history": history, "updated_at": datetime.now(UTC).isoformat()}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return folder / MANIFEST


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest, or an empty one (no adapter: the base model)."""
    try:
        data = json.loads((root(data_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {"current": None, "history": [], "updated_at": None}
    return data if isinstance(data, dict) else {"current": None, "history": []}


def prune(data_dir: Path, keep: set[str]) -> list[str]:
    """Delete stored files whose hash is not in ``keep``; the hashes deleted."""
    deleted: list[str] = []
    folder = root(data_dir)
    if not folder.is_dir():
        return deleted
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)
            deleted.append(entry.name)
    return deleted
