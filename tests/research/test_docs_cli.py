"""`mongars docs ingest | list | delete` on a folder shaped like a source repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.cli import app
from tests.research import docgen


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MONGARS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MONGARS_NEW_PASSWORD", "correct horse battery")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n")
    (repo / "README.md").write_text("# Demo\n\nThe lighthouse keeper is named Odile.\n")
    (repo / "src" / "app.py").write_text("def keeper():\n    return 'Odile'\n")
    (repo / "src" / "manual.pdf").write_bytes(docgen.pdf(["Lamp maintenance every Tuesday."]))
    (repo / "src" / "data.txt").write_bytes(docgen.binary_as_text())
    (repo / "empty.md").write_bytes(docgen.whitespace_file())
    return repo


def test_ingest_a_repository_then_again_then_delete(env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["docs", "ingest", str(env), "--collection", "acme/demo", "--shared"])
    assert r.exit_code == 0, r.output
    assert "3 new, 0 replaced, 0 unchanged" in r.output and "2 skipped" in r.output
    assert "src/data.txt" in r.output and "binary_content" in r.output
    assert "empty.md" in r.output and ".git" not in r.output
    listed = runner.invoke(app, ["docs", "list"])
    assert listed.exit_code == 0
    for path in ("README.md", "src/app.py", "src/manual.pdf"):
        assert path in listed.output

    (env / "README.md").write_text("# Demo\n\nThe keeper is now named Yann.\n")
    again = runner.invoke(app, ["docs", "ingest", str(env), "-c", "acme/demo", "--shared"])
    assert "0 new, 1 replaced, 2 unchanged" in again.output, again.output

    assert runner.invoke(app, ["docs", "delete", "1"]).exit_code == 0
    assert "README.md" not in runner.invoke(app, ["docs", "list"]).output
    missing = runner.invoke(app, ["docs", "delete", "999"])
    assert missing.exit_code == 1 and "no such document" in missing.output


def test_ingest_needs_an_owner_and_a_valid_collection(env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["docs", "ingest", str(env), "--collection", "x"])
    assert r.exit_code != 0 and "--user" in r.output
    r = runner.invoke(app, ["docs", "ingest", str(env), "-c", "x", "--user", "ghost"])
    assert r.exit_code != 0 and "ghost" in r.output
    r = runner.invoke(app, ["docs", "ingest", str(env), "-c", "<bad>", "--shared"])
    assert r.exit_code != 0
    assert runner.invoke(app, ["users", "create", "alice"]).exit_code == 0
    r = runner.invoke(
        app, ["docs", "ingest", str(env / "README.md"), "-c", "mine", "--user", "alice"]
    )
    assert r.exit_code == 0 and "1 new" in r.output


def test_bench_docs_prints_figures_and_baselines(env: Path) -> None:
    r = CliRunner().invoke(
        app, ["bench", "docs", "--docs", "4", "--pages", "2", "--questions", "8"]
    )
    assert r.exit_code == 0, r.output
    for label in ("pages/s", "chunks/s", "recall@5", "monGARS hybrid", "BM25 only", "dense only"):
        assert label in r.output
    bad = CliRunner().invoke(app, ["bench", "docs", "--docs", "0"])
    assert bad.exit_code == 1
