"""The `mongars` command line: accounts, migrations, and chatting with a live server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mongars.app import create_app
from mongars.cli import app
from tests.conftest import PASSWORD, LiveServer, make_settings
from tests.fakes import ScriptedLLM


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("MONGARS_DATA_DIR", str(data))
    monkeypatch.setenv("MONGARS_NEW_PASSWORD", PASSWORD)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return data


def test_users_commands_manage_accounts(env: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["users", "create", "--admin", "alice"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["users", "create", "bob"]).exit_code == 0
    dup = runner.invoke(app, ["users", "create", "bob"])
    assert dup.exit_code == 1 and "taken" in dup.output
    bad = runner.invoke(app, ["users", "create", "no spaces allowed"])
    assert bad.exit_code == 1
    listing = runner.invoke(app, ["users", "list"])
    assert "alice" in listing.output and "bob" in listing.output
    assert runner.invoke(app, ["users", "set-admin", "bob"]).exit_code == 0
    assert runner.invoke(app, ["users", "disable", "bob"]).exit_code == 0
    missing = runner.invoke(app, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "no user named" in missing.output
    assert (env / "secret_key").stat().st_mode & 0o777 == 0o600
    # the accounts are real: the server sees them
    settings = make_settings(env.parent, data_dir=env, secret_key="")
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings, llm=ScriptedLLM())) as client:
        ok = client.post("/token", data={"username": "alice", "password": PASSWORD})
        assert ok.status_code == 200
        disabled = client.post("/token", data={"username": "bob", "password": PASSWORD})
        assert disabled.status_code == 403
        assert client.app.state.runtime.setup_token is None  # type: ignore[attr-defined]
        # account changes made at the command line are in the admin audit log
        token = ok.json()["access_token"]
        audit = client.get("/api/v1/admin/audit", headers={"Authorization": f"Bearer {token}"})
        actions = [(e["action"], e["target"]) for e in audit.json()["items"]]
        assert ("user.create", "bob") in actions and ("user.disable", "bob") in actions
        assert all(e["actor"].startswith("cli") for e in audit.json()["items"])


def test_db_upgrade_and_check(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (env / "mongars.db").exists()
    r = runner.invoke(app, ["db", "check"])
    assert r.exit_code == 0 and "no drift" in r.output


def test_chat_command_streams_and_keeps_the_thread(env: Path, tmp_path: Path) -> None:
    llm = ScriptedLLM(replies=["First answer.", "Second answer."])
    runner = CliRunner()
    assert runner.invoke(app, ["users", "create", "alice"]).exit_code == 0
    settings = make_settings(tmp_path, data_dir=env, secret_key="")
    with LiveServer(create_app(settings, llm=llm)) as server:
        r = runner.invoke(
            app,
            ["chat", "--url", server.url, "-u", "alice"],
            input="hello\nand again\n\n",
            env={"MONGARS_PASSWORD": PASSWORD},
        )
        assert r.exit_code == 0, r.output
        assert "First answer." in r.output and "Second answer." in r.output
        # the second message went to the same thread, with the first turn as history
        assert [m.content for m in llm.calls[1] if m.role != "system"] == [
            "hello",
            "First answer.",
            "and again",
        ]
        wrong = runner.invoke(
            app,
            ["chat", "--url", server.url, "-u", "alice"],
            input="hi\n",
            env={"MONGARS_PASSWORD": "wrong-password"},
        )
        assert wrong.exit_code == 1 and "401" in wrong.output
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
