"""`mongars datasets curate | list | show | export | delete` and `mongars train` on the
configured database, through the same services (and worker) as the API."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.cli import app
from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.training.test_datasets_api import chat, consent, users


@pytest.fixture
def seeded(
    api_factory: Callable[..., Api],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_path: Path,
) -> Api:
    """A server's data directory with consenting turns; the CLI reads the same one."""
    api = api_factory(provider=ScriptedLLM(replies=["The capital of France is Paris."]))
    _, alice, _ = users(api)
    consent(api, alice, True)
    for conv in range(3):
        chat(api, alice, f"What is the capital of France? ({conv})", session=f"c{conv}")
    settings = api.runtime.settings
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("MONGARS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MONGARS_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("MONGARS_OFFLINE", "true")
    monkeypatch.setenv("MONGARS_LLM__MODEL_PATH", str(model_path))
    monkeypatch.setenv("MONGARS_TRAINING__BATCH_SIZE", "2")
    monkeypatch.setenv("MONGARS_TRAINING__SEQ_LEN", "64")
    monkeypatch.setenv("MONGARS_TRAINING__MLFLOW", "false")
    return api


def test_curate_list_show_export_delete(seeded: Api, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["datasets", "curate", "--min-confidence", "0", "--min-records", "1"])
    assert r.exit_code == 0, r.output
    dataset_id = re.search(r"dataset (\w+): approved", r.output)
    assert dataset_id, r.output
    ident = dataset_id.group(1)
    assert ident in runner.invoke(app, ["datasets", "list"]).output
    assert "records 3" in runner.invoke(app, ["datasets", "show", ident]).output
    out = tmp_path / "export.jsonl"
    assert runner.invoke(app, ["datasets", "export", ident, "-o", str(out)]).exit_code == 0
    assert len(out.read_text().splitlines()) == 3
    assert json.loads(out.read_text().splitlines()[0])["messages"][2]["role"] == "assistant"
    missing = runner.invoke(app, ["datasets", "show", "nope"])
    assert missing.exit_code == 1 and "no dataset nope" in missing.output
    assert runner.invoke(app, ["datasets", "delete", ident, "--yes"]).exit_code == 0
    assert runner.invoke(app, ["datasets", "show", ident]).exit_code == 1


def test_quarantined_dataset_is_refused(seeded: Api) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["datasets", "curate", "--min-records", "50"])
    ident = re.search(r"dataset (\w+): quarantined", r.output)
    assert ident, r.output
    assert "too_few_records" in r.output
    r = runner.invoke(app, ["train", "--dataset", ident.group(1)])
    assert r.exit_code == 1 and "quarantined" in r.output


def test_train_arguments_are_checked(seeded: Api) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["train"]).exit_code == 2
    assert runner.invoke(app, ["train", "--dataset", "x", "--resume", "y"]).exit_code == 2
    assert runner.invoke(app, ["train", "--dataset", "x", "--objective", "dpo"]).exit_code == 2
    r = runner.invoke(app, ["train", "--dataset", "nope"])
    assert r.exit_code == 1 and "no dataset nope" in r.output


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_runs_to_completion_with_a_progress_bar(seeded: Api) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["datasets", "curate", "--min-confidence", "0", "--min-records", "1"])
    ident = re.search(r"dataset (\w+): approved", r.output)
    assert ident, r.output
    r = runner.invoke(app, ["train", "--dataset", ident.group(1), "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    assert "completed at step 2/2" in r.output
    assert "perplexity_adapter" in r.output
