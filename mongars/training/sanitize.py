"""`mongars datasets sanitize`: scrub every string of a JSONL file, write the result
atomically, and append one line to the audit log ``<data_dir>/audit/sanitize.jsonl``.

Each input line is a JSON object; every string value in it (nested objects and
lists included, so chat ``messages[].content`` too) is scrubbed, keys are kept.
Blank lines are skipped. A malformed line stops the run before any output exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mongars.training.scrub import DETECTOR_ORDER, SCRUBBER_VERSION, Scrubber

AUDIT_FILE = Path("audit") / "sanitize.jsonl"


class SanitizeError(ValueError):
    """The input cannot be sanitized (no output was written)."""


class MalformedLine(SanitizeError):
    def __init__(self, path: Path, line_no: int, reason: str) -> None:
        super().__init__(f"{path}: line {line_no}: {reason}")
        self.line_no = line_no


@dataclass(frozen=True)
class SanitizeReport:
    input_path: Path
    input_sha256: str
    output_path: Path
    output_sha256: str
    records: int
    counts: dict[str, int]  # replacements per detector, every detector listed
    remaining: dict[str, int]  # findings per detector in the output (0 when clean)
    remaining_lines: list[int]  # output line numbers (1-based) that still hold findings
    audit_path: Path
    scrubber_version: str = SCRUBBER_VERSION

    @property
    def clean(self) -> bool:
        return not any(self.remaining.values())


def sanitize_file(
    in_path: Path,
    out_path: Path,
    actor: str,
    data_dir: Path,
    other_user_names: Iterable[str] = (),
    *,
    scrubber: Scrubber | None = None,
) -> SanitizeReport:
    """Scrub ``in_path`` (JSONL) into ``out_path`` and audit it.

    Raises ``SanitizeError`` (``MalformedLine`` naming the line) without writing
    anything when the input is unusable or ``out_path`` is the input itself.
    """
    in_path, out_path = Path(in_path).resolve(), Path(out_path).resolve()
    if not in_path.is_file():
        raise SanitizeError(f"{in_path}: no such file")
    if out_path == in_path or (out_path.exists() and out_path.samefile(in_path)):
        raise SanitizeError("the output must not be the input file")
    if out_path.is_dir():
        raise SanitizeError(f"{out_path} is a directory")
    scrubber = scrubber or Scrubber(other_user_names)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(
        dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp"
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            result = _scrub_lines(in_path, out, scrubber)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, in_path.stat().st_mode & 0o666)  # no more open than the input
        os.replace(temp, out_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(out_path.parent)
    in_sha, out_sha, records, counts, remaining, remaining_lines = result
    report = SanitizeReport(
        input_path=in_path,
        input_sha256=in_sha,
        output_path=out_path,
        output_sha256=out_sha,
        records=records,
        counts={kind: counts[kind] for kind in DETECTOR_ORDER},
        remaining={kind: remaining[kind] for kind in DETECTOR_ORDER},
        remaining_lines=remaining_lines,
        audit_path=Path(data_dir).resolve() / AUDIT_FILE,
    )
    try:
        append_audit(report, actor)
    except BaseException:
        out_path.unlink(missing_ok=True)  # no sanitized file without its audit line
        raise
    return report


_Scrubbed = tuple[str, str, int, Counter[str], Counter[str], list[int]]


def _scrub_lines(in_path: Path, out: Any, scrubber: Scrubber) -> _Scrubbed:
    in_digest, out_digest = hashlib.sha256(), hashlib.sha256()
    counts: Counter[str] = Counter()
    remaining: Counter[str] = Counter()
    remaining_lines: list[int] = []
    records = 0
    with in_path.open("rb") as src:
        for line_no, raw in enumerate(src, start=1):
            in_digest.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedLine(in_path, line_no, "not UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedLine(in_path, line_no, f"invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise MalformedLine(in_path, line_no, "not a JSON object")
            found: Counter[str] = Counter()
            clean = _scrub_value(record, scrubber, counts, found)
            records += 1
            if found:
                remaining.update(found)
                remaining_lines.append(records)
            encoded = (json.dumps(clean, ensure_ascii=False) + "\n").encode("utf-8")
            out_digest.update(encoded)
            out.write(encoded)
    return (
        in_digest.hexdigest(),
        out_digest.hexdigest(),
        records,
        counts,
        remaining,
        remaining_lines,
    )


def _scrub_value(value: Any, scrubber: Scrubber, counts: Counter[str], found: Counter[str]) -> Any:
    """A copy of ``value`` with every string scrubbed; what is still found after
    scrubbing is counted into ``found``."""
    if isinstance(value, str):
        text, replaced = scrubber.scrub(value)
        counts.update(replaced)
        found.update(f.kind for f in scrubber.find(text))
        return text
    if isinstance(value, dict):
        return {key: _scrub_value(item, scrubber, counts, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_value(item, scrubber, counts, found) for item in value]
    return value


def append_audit(report: SanitizeReport, actor: str) -> None:
    """One JSON line per run, written with a single ``write`` on an ``O_APPEND``
    descriptor and fsynced, so concurrent runs never interleave."""
    entry = {
        "event": "dataset.sanitize",
        "at": datetime.now(UTC).isoformat(),
        "actor": actor,
        "input": {"path": str(report.input_path), "sha256": report.input_sha256},
        "output": {"path": str(report.output_path), "sha256": report.output_sha256},
        "records": report.records,
        "counts": report.counts,
        "scrubber_version": report.scrubber_version,
        "remaining": report.remaining,
        "clean": report.clean,
    }
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    report.audit_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(report.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.write(fd, line) != len(line):
            raise OSError(f"short write to {report.audit_path}")
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
