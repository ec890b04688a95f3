"""Reading a backup, a folder or a .tar(.gz), as if it were hostile.

Only regular files pass: a symlink, hard link, device or folder outside the backup is
refused (tarfile's ``data`` filter judges each member first), as is a member the
manifest does not list, a missing one, a duplicate, or one whose sha256 or size
differs. :func:`verify` reads everything and writes nothing; :func:`extract` writes
into the caller's staging folder and checks every hash again as it writes, so a backup
changed between the two passes is caught too."""

from __future__ import annotations

import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from mongars.backup.errors import BackupRefused, DamagedBackup
from mongars.backup.manifest import (
    MANIFEST,
    Manifest,
    check_path,
    copy_hashed,
    hash_stream,
    make_dirs,
    parse,
)
from mongars.backup.progress import Reporter

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_BROKEN = (tarfile.TarError, EOFError, zlib.error)


class Reader(Protocol):
    def manifest_bytes(self) -> bytes: ...

    def members(self) -> Iterator[tuple[str, IO[bytes]]]:
        """Every regular file as (name, stream); DamagedBackup on anything else."""
        ...


class FolderReader:
    def __init__(self, root: Path) -> None:
        self.root = root

    def manifest_bytes(self) -> bytes:
        path = self.root / MANIFEST
        if not path.is_file() or path.is_symlink():
            raise DamagedBackup(f"not a monGARS backup: {self.root} has no {MANIFEST}")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise DamagedBackup(f"{MANIFEST} is too large to be a backup's manifest")
        return path.read_bytes()

    def members(self) -> Iterator[tuple[str, IO[bytes]]]:
        for folder, dirs, files in os.walk(self.root):
            for name in sorted(dirs) + sorted(files):
                path = Path(folder) / name
                relative = path.relative_to(self.root).as_posix()
                mode = path.lstat().st_mode
                if stat.S_ISDIR(mode):
                    continue
                if not stat.S_ISREG(mode):
                    raise DamagedBackup(f"{relative!r} is not a regular file (a symlink?)")
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as stream:
                    yield relative, stream


class TarReader:
    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self.tar = tar
        self.path = path
        self.dest = str(path.parent / ".restore-check")  # the data filter needs one

    def manifest_bytes(self) -> bytes:
        try:
            member = self.tar.getmember(MANIFEST)
        except KeyError:
            raise DamagedBackup(
                f"not a monGARS backup: {self.path.name} has no {MANIFEST}"
            ) from None
        if not member.isreg() or member.size > MAX_MANIFEST_BYTES:
            raise DamagedBackup(f"{MANIFEST} in {self.path.name} is not a plain small file")
        stream = self.tar.extractfile(member)
        assert stream is not None
        return stream.read()

    def members(self) -> Iterator[tuple[str, IO[bytes]]]:
        for member in self.tar:
            try:
                tarfile.data_filter(member, self.dest)
            except tarfile.FilterError as exc:
                raise DamagedBackup(
                    f"hostile archive member {member.name[:200]!r}: {exc}"
                ) from None
            if member.isdir():
                continue
            if not member.isreg():
                raise DamagedBackup(
                    f"archive member {member.name[:200]!r} is not a regular file (a link or "
                    "a device): a backup holds only files"
                )
            stream = self.tar.extractfile(member)
            assert stream is not None
            yield member.name, stream


@contextmanager
def open_backup(path: Path) -> Iterator[Reader]:
    if path.is_dir():
        yield FolderReader(path)
        return
    if not path.is_file():
        raise BackupRefused(f"no backup at {path}")
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the `with` below
    except (*_BROKEN, OSError) as exc:
        raise DamagedBackup(
            f"{path.name} is not a backup archive (.tar or .tar.gz): {exc}"
        ) from None
    with tar:
        try:
            yield TarReader(tar, path)
        except _BROKEN as exc:
            raise DamagedBackup(f"{path.name} is truncated or corrupt: {exc}") from exc


def read_manifest(reader: Reader) -> Manifest:
    return parse(reader.manifest_bytes())


def verify(reader: Reader, manifest: Manifest, reporter: Reporter) -> None:
    """Every listed file present once, with its sha256 and size; nothing else."""
    _walk(reader, manifest, reporter, None)


def extract(reader: Reader, manifest: Manifest, staging: Path, reporter: Reporter) -> None:
    """Write every file under ``staging`` (0600 files, 0700 folders), checking again."""
    _walk(reader, manifest, reporter, staging)


def _walk(reader: Reader, manifest: Manifest, reporter: Reporter, staging: Path | None) -> None:
    expected = manifest.by_path()
    seen: set[str] = set()
    for name, stream in reader.members():
        if name == MANIFEST:
            continue
        entry = expected.get(name)
        if entry is None:
            try:
                check_path(name)
            except ValueError as exc:
                raise DamagedBackup(f"hostile backup member: {exc}") from None
            raise DamagedBackup(f"{name!r} is in the backup but not in its manifest")
        if name in seen:
            raise DamagedBackup(f"{name!r} appears twice in the backup")
        seen.add(name)
        if staging is None:
            sha, size = hash_stream(stream, reporter)
        else:
            target = staging / name
            make_dirs(staging, target.parent)
            sha, size = copy_hashed(stream, target, reporter)
        if sha != entry.sha256 or size != entry.size:
            raise DamagedBackup(
                f"{name} is damaged: sha256 {sha[:16]}... ({size} bytes), the manifest says "
                f"{entry.sha256[:16]}... ({entry.size} bytes)"
            )
    missing = sorted(set(expected) - seen)
    if missing:
        raise DamagedBackup(
            f"{len(missing)} file(s) of the manifest are missing from the backup: {missing[0]}"
        )
