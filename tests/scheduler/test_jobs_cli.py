"""`mongars jobs`: list, pause, resume, run and cancel from the command line, acting on
the database a running server (the scheduler's leader) shares."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mongars.app import create_app
from mongars.cli import app
from tests.conftest import PASSWORD, make_settings
from tests.fakes import ScriptedLLM

PLUGINS = '["tests.scheduler.plugin_jobs:manual_jobs"]'


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("MONGARS_DATA_DIR", str(data))
    monkeypatch.setenv("MONGARS_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("MONGARS_MEMORY__ENABLED", "false")
    monkeypatch.setenv("MONGARS_SCHEDULER__PLUGINS", PLUGINS)
    monkeypatch.setenv("TEST_JOB_STEPS", "2")
    monkeypatch.setenv("TEST_JOB_STEP_S", "0.05")
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return data


def test_jobs_commands_steer_the_servers_scheduler(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    listing = runner.invoke(app, ["jobs", "list"])
    assert listing.exit_code == 0, listing.output
    assert "training.retention" in listing.output and "test.slow" in listing.output
    missing = runner.invoke(app, ["jobs", "pause", "no.such.job"])
    assert missing.exit_code == 1 and "no job named" in missing.output
    assert runner.invoke(app, ["jobs", "pause", "test.slow"]).exit_code == 0
    refused = runner.invoke(app, ["jobs", "run", "test.slow"])
    assert refused.exit_code == 1 and "paused" in refused.output
    assert runner.invoke(app, ["jobs", "resume", "test.slow"]).exit_code == 0
    nothing = runner.invoke(app, ["jobs", "cancel", "test.slow"])
    assert nothing.exit_code == 1 and "no run to cancel" in nothing.output
    settings = make_settings(
        env.parent,
        data_dir=env,
        scheduler={"enabled": True, "plugins": ["tests.scheduler.plugin_jobs:manual_jobs"]},
    )
    with TestClient(create_app(settings, llm=ScriptedLLM())):
        queued = runner.invoke(app, ["jobs", "run", "test.slow"])
        assert queued.exit_code == 0 and "queued manual-test.slow-" in queued.output
        deadline = time.time() + 20
        while "succeeded" not in (runs := runner.invoke(app, ["jobs", "runs", "test.slow"])).output:
            assert time.time() < deadline, runs.output
            time.sleep(0.3)
        assert "manual" in runs.output and "items 2" in runs.output
    audit = runner.invoke(app, ["jobs", "list"])
    assert "succeeded" in audit.output
