"""`mongars bench qa`: LoCoMo's scoring rules, and a small real run through the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.bench.qa_score import f1_score, multi_answer_f1, normalize_answer, score
from mongars.cli import app

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"


def test_normalisation_follows_locomo() -> None:
    assert normalize_answer("The Cat, and a Dog!") == "cat dog"
    assert normalize_answer("  7 May 2023. ") == "7 may 2023"


def test_token_f1_with_stemming() -> None:
    assert f1_score("She went running", "running") == pytest.approx(0.5)  # P 1/3, R 1
    assert f1_score("paintings", "painting") == 1.0  # Porter stems agree
    assert f1_score("no idea", "Paris") == 0.0
    assert f1_score("", "Paris") == 0.0


def test_multi_hop_and_open_domain_rules() -> None:
    # each gold part takes its best prediction part, then the parts are averaged
    assert multi_answer_f1("reading, art", "reading, traveling, art") == pytest.approx(2 / 3)
    assert score(1, "reading, art", "reading, traveling, art") == pytest.approx(2 / 3)
    assert score(3, "likely yes", "Likely yes; since she loves it") == 1.0  # first alternative
    assert score(4, "Paris", "Paris") == 1.0


@pytest.mark.model
@pytest.mark.slow
def test_bench_qa_prints_the_three_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not LOCOMO.is_file():
        pytest.skip(f"{LOCOMO} is outside this checkout")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONGARS_DATA_DIR", str(tmp_path / "data"))
    r = CliRunner().invoke(app, ["bench", "qa", "--dataset", str(LOCOMO), "--limit", "3"])
    assert r.exit_code == 0, r.output
    for label in ("memory on", "memory off", "evidence in", "overall (3)", "gap to ceiling"):
        assert label in r.output
    assert "stored answers with scaffolding: 0" in r.output.replace("\n", " ")
    bad = CliRunner().invoke(app, ["bench", "qa", "--dataset", str(LOCOMO), "--limit", "-1"])
    assert bad.exit_code == 1
