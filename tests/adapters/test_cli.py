"""`mongars adapters`: register, list, approve, activate, canary, rollback from the
command line, on the database and data directory a running server shares; refused
moves and unknown versions exit non-zero with the registry's reason."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mongars.adapters import store
from mongars.cli import app
from tests.adapters.factory import add_run
from tests.conftest import Api


@pytest.fixture
def server(api_factory: Callable[..., Api], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    """A server on tmp_path/data, and the CLI's environment pointing at the same data."""
    api = api_factory()
    monkeypatch.setenv("MONGARS_DATA_DIR", str(api.runtime.settings.data_dir))
    monkeypatch.setenv("MONGARS_SECRET_KEY", api.runtime.settings.secret_key.get_secret_value())
    monkeypatch.setenv("MONGARS_MEMORY__ENABLED", "false")
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return api


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["adapters", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_register_approve_activate_and_roll_back(server: Api) -> None:
    data_dir = server.runtime.settings.data_dir
    run_id = add_run(server.runtime, server.client.portal, b"cli adapter")
    code, out = invoke("register", run_id)
    assert code == 0 and f"run {run_id}: adapter version 1, candidate" in out, out
    assert invoke("register", run_id)[1] == out  # idempotent: the same file registers once
    code, out = invoke("list")
    assert code == 0 and "the base model answers" in out and run_id in out, out
    assert "candidate" in out and "dataset_missing" in out

    code, out = invoke("activate", "1")
    assert code == 1 and "only an approved version may serve" in out, out
    code, out = invoke("approve", "1", "--note", "checked by hand")
    assert code == 0 and "adapter version 1 approved" in out, out
    code, out = invoke("activate", "1")
    assert code == 0 and "version 1 serves" in out, out
    assert store.read_manifest(data_dir)["current"]["version"] == 1
    assert server.client.portal is not None
    pointer = server.client.portal.call(server.runtime.adapters.pointer)
    assert pointer.active is not None and pointer.active.id == 1  # the server sees it

    code, out = invoke("show", "1")
    assert code == 0 and "active" in out and "checked by hand" in out, out
    assert "perplexity_ratio" in out and f"cli:{getpass.getuser()}" in out

    run_two = add_run(server.runtime, server.client.portal, b"second adapter")
    assert invoke("register", run_two)[0] == 0
    code, out = invoke("canary", "2", "--share", "0.2")
    assert code == 0 and "canary version 2 answers 20% of turns" in out, out
    assert invoke("canary", "2", "--share", "1.5")[0] != 0
    code, out = invoke("canary-stop")
    assert code == 0 and "canary stopped: version 1 serves." in out, out

    code, out = invoke("rollback", "--note", "worse answers")
    assert code == 0 and "rolled back: the base model answers" in out, out
    assert store.read_manifest(data_dir)["current"] is None
    code, out = invoke("rollback")
    assert code == 1 and "there is nothing to roll back" in out, out
    code, out = invoke("changes")
    assert code == 0 and "rollback" in out and "worse answers" in out, out
    assert "activate" in out and "canary_start" in out
    code, out = invoke("compare")
    assert code == 0 and "thumbs down" in out and "95 % intervals" in out, out


def test_unknown_versions_and_runs_exit_non_zero(server: Api) -> None:
    for args in (["show", "42"], ["approve", "42"], ["activate", "42"], ["reject", "42"]):
        code, out = invoke(*args)
        assert code == 1 and "error: no adapter version 42" in out, (args, out)
    code, out = invoke("register", "nosuchrun")
    assert code == 1 and "no training run nosuchrun" in out, out
    code, out = invoke("deactivate")
    assert code == 1 and "no adapter is active" in out, out
    code, out = invoke("list", "--state", "bogus")
    assert code == 2 and "--state must be one of" in out, out
