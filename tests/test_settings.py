"""Settings: validated, no side effects; a secret generated once and kept private."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mongars.settings import Settings, ensure_secret_key


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "d")  # type: ignore[call-arg]
    assert not (tmp_path / "d").exists()  # reading settings writes nothing
    first = ensure_secret_key(settings)
    assert len(first) >= 32
    path = tmp_path / "d" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_secret_key(settings) == first


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "short-but-real"])
def test_production_refuses_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="MONGARS_SECRET_KEY"):
        Settings(_env_file=None, env="production", secret_key=secret)  # type: ignore[call-arg]


def test_env_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGARS_LLM__PROVIDER", "ollama")
    monkeypatch.setenv("MONGARS_LLM__BASE_URL", "http://127.0.0.1:11434")
    monkeypatch.setenv("MONGARS_AUTH__REGISTRATION", "open")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.llm.provider == "ollama" and s.auth.registration.value == "open"


def test_remote_provider_needs_base_url() -> None:
    with pytest.raises(ValidationError, match="BASE_URL"):
        Settings(_env_file=None, llm={"provider": "openai"})  # type: ignore[call-arg]


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/mongars.db"
