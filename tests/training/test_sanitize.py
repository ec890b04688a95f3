"""`sanitize_file` and `mongars datasets sanitize`: scrubbed JSONL written atomically,
one audit line per run, clear errors and no output for unusable input."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.cli import app
from mongars.training.sanitize import MalformedLine, SanitizeError, sanitize_file
from mongars.training.scrub import DETECTOR_ORDER, SCRUBBER_VERSION, Scrubber, ScrubResult

RECORDS = [
    {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "I'm Alice, mail alice@example.com or +1 415-555-2671"},
            {"role": "assistant", "content": "Noted, Alice."},
        ],
        "score": 0.5,
        "ok": True,
        "none": None,
    },
    {"text": "card 4111 1111 1111 1111", "tags": ["IBAN DE89 3704 0044 0532 0130 00", 7]},
    {"nested": {"deeper": [{"ip": "203.0.113.9"}]}, "alice@example.com": "keys are kept"},
]
EXPECTED = [
    {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "I'm [NAME], mail [EMAIL] or [PHONE]"},
            {"role": "assistant", "content": "Noted, [NAME]."},
        ],
        "score": 0.5,
        "ok": True,
        "none": None,
    },
    {"text": "card [CARD]", "tags": ["IBAN [IBAN]", 7]},
    {"nested": {"deeper": [{"ip": "[IP]"}]}, "alice@example.com": "keys are kept"},
]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_lines(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "audit" / "sanitize.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in RECORDS]
    lines.insert(1, "   ")  # blank lines are skipped
    return write_jsonl(tmp_path / "in.jsonl", lines)


def test_sanitize_scrubs_every_string_and_audits(source: Path, tmp_path: Path) -> None:
    out, data = tmp_path / "sub" / "out.jsonl", tmp_path / "data"
    before = source.read_bytes()
    report = sanitize_file(source, out, "cli:tester", data, other_user_names=["Alice"])

    assert [json.loads(line) for line in out.read_text().splitlines()] == EXPECTED
    assert source.read_bytes() == before
    assert report.records == 3
    assert report.counts == {
        "secret": 0,
        "url_credentials": 0,
        "email": 1,
        "ip": 1,
        "iban": 1,
        "card": 1,
        "phone": 1,
        "name": 2,
    }
    assert report.clean and report.remaining == dict.fromkeys(DETECTOR_ORDER, 0)
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]  # no temp file left

    [entry] = audit_lines(data)
    assert entry["event"] == "dataset.sanitize"
    assert entry["actor"] == "cli:tester"
    at = datetime.fromisoformat(str(entry["at"]))
    assert at.tzinfo is not None and at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert entry["input"] == {"path": str(source.resolve()), "sha256": sha256(source)}
    assert entry["output"] == {"path": str(out.resolve()), "sha256": sha256(out)}
    assert report.output_sha256 == sha256(out)
    assert entry["records"] == 3
    assert entry["counts"] == report.counts
    assert entry["scrubber_version"] == SCRUBBER_VERSION
    assert entry["remaining"] == dict.fromkeys(DETECTOR_ORDER, 0)
    assert entry["clean"] is True
    assert report.audit_path == (data / "audit" / "sanitize.jsonl").resolve()

    # a second run appends a second line
    sanitize_file(source, tmp_path / "again.jsonl", "cli:other", data)
    assert [e["actor"] for e in audit_lines(data)] == ["cli:tester", "cli:other"]


def test_malformed_line_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ['{"a": "x@example.com"}', "", '{"b": oops}'])
    out = tmp_path / "out.jsonl"
    out.write_text("previous result\n")
    with pytest.raises(MalformedLine, match="line 3: invalid JSON") as info:
        sanitize_file(src, out, "cli:t", tmp_path / "data")
    assert info.value.line_no == 3
    assert out.read_text() == "previous result\n"  # the old output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    assert audit_lines(tmp_path / "data") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n[1, 2]\n', "line 2: not a JSON object"),
        (b'"just a string"\n', "line 1: not a JSON object"),
        (b'{"a": 1}\n{"b": "\xff\xfe"}\n', "line 2: not UTF-8"),
    ],
)
def test_lines_that_are_not_objects_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    with pytest.raises(MalformedLine, match=message):
        sanitize_file(src, tmp_path / "out.jsonl", "cli:t", tmp_path / "data")
    assert not (tmp_path / "out.jsonl").exists()


def test_output_must_differ_from_input_and_input_must_exist(source: Path, tmp_path: Path) -> None:
    before = source.read_bytes()
    with pytest.raises(SanitizeError, match="must not be the input"):
        sanitize_file(source, source, "cli:t", tmp_path / "data")
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    with pytest.raises(SanitizeError, match="must not be the input"):
        sanitize_file(source, link, "cli:t", tmp_path / "data")
    assert source.read_bytes() == before
    with pytest.raises(SanitizeError, match="no such file"):
        sanitize_file(tmp_path / "missing.jsonl", tmp_path / "o.jsonl", "cli:t", tmp_path / "d")
    assert audit_lines(tmp_path / "data") == []


class LeakyScrubber(Scrubber):
    """Replaces nothing: every detection is still there after 'scrubbing'."""

    def scrub(self, text: str) -> ScrubResult:
        return ScrubResult(text, dict.fromkeys(DETECTOR_ORDER, 0))


def test_findings_left_after_scrubbing_are_reported(source: Path, tmp_path: Path) -> None:
    report = sanitize_file(
        source, tmp_path / "out.jsonl", "cli:t", tmp_path / "data", scrubber=LeakyScrubber()
    )
    assert not report.clean
    assert report.remaining["email"] == 1 and report.remaining["card"] == 1
    assert report.remaining_lines == [1, 2, 3]
    [entry] = audit_lines(tmp_path / "data")
    assert entry["clean"] is False and entry["remaining"] == report.remaining


def test_no_output_without_its_audit_line(source: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit").write_text("a file where the audit folder should be")
    with pytest.raises(OSError):
        sanitize_file(source, tmp_path / "out.jsonl", "cli:t", data)
    assert not (tmp_path / "out.jsonl").exists()


# --- the command ----------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("MONGARS_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return data


def test_cli_sanitize_prints_counts_and_the_audit_path(env: Path, source: Path) -> None:
    r = CliRunner().invoke(
        app, ["datasets", "sanitize", str(source), "-o", "out.jsonl", "--name", "Alice"]
    )
    assert r.exit_code == 0, r.output
    assert "email" in r.output and "phone" in r.output
    assert "3 record(s)" in r.output
    audit = env / "audit" / "sanitize.jsonl"
    assert "sanitize.jsonl" in r.output and audit.exists()  # the server's data dir
    [entry] = audit_lines(env)
    assert str(entry["actor"]).startswith("cli")
    assert entry["counts"]["name"] == 2  # type: ignore[index]
    assert "[NAME]" in Path("out.jsonl").read_text()


def test_cli_sanitize_data_dir_option(env: Path, source: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    r = CliRunner().invoke(
        app, ["datasets", "sanitize", str(source), "-o", "o.jsonl", "--data-dir", str(other)]
    )
    assert r.exit_code == 0, r.output
    assert len(audit_lines(other)) == 1 and audit_lines(env) == []


def test_cli_sanitize_errors(env: Path, source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["datasets", "sanitize", "nope.jsonl", "-o", "o.jsonl"])
    assert missing.exit_code == 1 and "no such file" in missing.output
    same = runner.invoke(app, ["datasets", "sanitize", str(source), "-o", str(source)])
    assert same.exit_code == 1 and "must not be the input" in same.output
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"a": 1}', "{not json"])
    malformed = runner.invoke(app, ["datasets", "sanitize", str(bad), "-o", "o.jsonl"])
    assert malformed.exit_code == 1 and "line 2" in malformed.output
    assert not Path("o.jsonl").exists()
    no_output = runner.invoke(app, ["datasets", "sanitize", str(source)])
    assert no_output.exit_code != 0
    assert audit_lines(env) == []


def test_cli_sanitize_fails_when_something_is_left(
    env: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Scrubber, "scrub", LeakyScrubber.scrub)
    r = CliRunner().invoke(app, ["datasets", "sanitize", str(source), "-o", "out.jsonl"])
    assert r.exit_code == 2
    assert "still detected" in r.output and "do not train on this file" in r.output
