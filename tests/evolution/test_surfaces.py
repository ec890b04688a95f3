"""The console page, the CLI and the scheduler job of the evolution engine."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.cli import app
from mongars.scheduler.setup import all_jobs
from tests.conftest import Api, make_settings
from tests.evolution.helpers import CALM, active_id, add_turns
from tests.evolution.test_engine import surge
from tests.web.test_console_http import csrf, login


def test_page_shows_decisions_and_approves(api_factory: Callable[..., Api]) -> None:
    api = api_factory(evolution=CALM)
    admin = api.setup_admin()
    api.create_user(admin, "bob")
    v1, _ = surge(api)
    login(api.client)
    page = api.client.get("/admin/evolution")
    assert page.status_code == 200, page.text
    assert 'href="/admin/evolution" aria-current="page"' in page.text
    assert "No decision yet." in page.text and 'id="diagnostics"' in page.text
    token = csrf(api.client, "/admin/evolution")
    r = api.client.post(
        "/admin/evolution/diagnose", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    page = api.client.get("/admin/evolution").text
    assert "<code>rollback_adapter</code>" in page and "awaiting_approval" in page
    assert "&#34;p_value&#34;" in page or '"p_value"' in page
    decision = re.search(r'action="/admin/evolution/decisions/(\d+)/approve"', page)
    assert decision
    r = api.client.post(
        f"/admin/evolution/decisions/{decision.group(1)}/approve",
        data={"csrf_token": token, "note": "from the console"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert active_id(api) == v1
    r = api.client.post(
        f"/admin/evolution/decisions/{decision.group(1)}/approve",
        data={"note": "no token"},
        follow_redirects=False,
    )
    assert r.status_code == 403

    api.client.post("/logout", data={"csrf_token": csrf(api.client, "/chat")})
    login(api.client, "bob")
    assert api.client.get("/admin/evolution").status_code == 403


def test_cli_diagnoses_and_approves(
    api_factory: Callable[..., Api], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_factory(evolution=CALM)
    api.setup_admin()
    v1, _ = surge(api)
    settings = api.runtime.settings
    monkeypatch.setenv("MONGARS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MONGARS_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("MONGARS_SCHEDULER__ENABLED", "false")
    monkeypatch.setenv("MONGARS_MEMORY__ENABLED", "false")
    monkeypatch.setenv("MONGARS_EVOLUTION__MAX_LOAD_PER_CORE", "10000")
    monkeypatch.setenv("MONGARS_EVOLUTION__MAX_CPU_PRESSURE", "100")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["evolution", "diagnose"])
    assert out.exit_code == 0, out.output
    assert "rollback_adapter" in out.output and "awaiting_approval" in out.output
    listing = runner.invoke(app, ["evolution", "decisions", "--status", "awaiting_approval"])
    assert listing.exit_code == 0 and "adapter_regression" in listing.output
    decision_id = re.search(r"#(\d+) .* rollback_adapter  awaiting_approval", listing.output)
    assert decision_id, listing.output
    ok = runner.invoke(app, ["evolution", "approve", decision_id.group(1), "--note", "cli"])
    assert ok.exit_code == 0 and "approved" in ok.output, ok.output
    assert active_id(api) == v1
    again = runner.invoke(app, ["evolution", "reject", decision_id.group(1)])
    assert again.exit_code == 1 and "only a decision awaiting approval" in again.output


def test_diagnose_job_runs_on_the_scheduler(api_factory: Callable[..., Api]) -> None:
    on = make_settings(Path("/tmp"), evolution={"enabled": True})
    assert "evolution.diagnose" in [s.name for s in all_jobs(on)]
    off = make_settings(Path("/tmp"), evolution={"enabled": False})
    assert "evolution.diagnose" not in [s.name for s in all_jobs(off)]

    api = api_factory(
        scheduler={"enabled": True},
        evolution={**CALM, "train_min_feedback": 2},
        training={"default_consent": True},
    )
    admin = api.setup_admin()
    add_turns(api, None, 3, up=3)
    r = api.client.post("/api/v1/jobs/evolution.diagnose/run", headers=admin)
    assert r.status_code in (200, 201, 202), r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = api.client.get("/api/v1/jobs/evolution.diagnose/runs", headers=admin).json()
        if runs["items"] and runs["items"][0]["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    assert runs["items"][0]["state"] == "succeeded", runs
    decisions = api.client.get("/api/v1/evolution/decisions", headers=admin).json()["items"]
    [training] = [d for d in decisions if d["rule"] == "training_ready"]
    assert training["status"] == "taken", training
    assert "training.curate: run manual-training.curate-" in training["outcome"]
