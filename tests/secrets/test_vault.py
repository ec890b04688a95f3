"""MONGARS_SECRETS__BACKEND=vault against a real OpenBao dev server: KV v2 with token and
AppRole auth, rotation picked up by the refresh loop, and clear errors at start (Vault
unreachable, a key missing, a wrong token) with no fallback to a generated secret."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mongars.app import create_app
from mongars.errors import SecretsUnavailable
from mongars.secrets import resolve_settings
from mongars.settings import Settings, ensure_secret_key
from tests.conftest import PASSWORD, Api, make_settings
from tests.fakes import ScriptedLLM
from tests.llm.fake_servers import FakeOpenAI, refused_url, serve
from tests.secrets.conftest import Bao, vault_settings

JWT_1 = "jwt-secret-one-" + "a" * 40
JWT_2 = "jwt-secret-two-" + "b" * 40


class KeyedOpenAI(FakeOpenAI):
    """The OpenAI-compatible fake, also recording each request's Authorization header."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str | None] = []

    def app(self) -> Any:
        inner = super().app()

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                value = headers.get(b"authorization")
                self.authorizations.append(value.decode() if value else None)
            await inner(scope, receive, send)

        return asgi


@pytest.fixture
def start() -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included); stop them after the test."""
    clients: list[TestClient] = []

    def make(settings: Settings, **kw: Any) -> TestClient:
        client = TestClient(create_app(settings, **kw))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def metric(text: str, name: str, label: str = "") -> float:
    """A series' value from the Prometheus text (labels beyond ``label`` ignored)."""
    for found in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        if label in found.group(1):
            return float(found.group(2))
    raise AssertionError(f"no {name} {label} in /metrics")


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not picked up in time"
        time.sleep(0.05)


# --- reading at start ----------------------------------------------------------------


def test_token_auth_reads_kv_v2_and_signs_with_it(
    tmp_path: Path, bao: Bao, kv_path: str, start: Callable[..., TestClient]
) -> None:
    bao.put(kv_path, secret_key=JWT_1)
    settings = vault_settings(tmp_path, bao, kv_path)
    api = Api(start(settings, llm=ScriptedLLM()))
    assert api.runtime.secret == JWT_1
    headers = api.setup_admin()
    assert api.client.get("/api/v1/user/me", headers=headers).status_code == 200
    # No generated secret file: Vault's secret is the only one.
    assert not (settings.data_dir / "secret_key").exists()


def test_approle_login_reads_the_entry_its_policy_allows(
    tmp_path: Path, bao: Bao, kv_path: str
) -> None:
    bao.put(kv_path, secret_key=JWT_1, database_password="pg-pass-1")
    role_id, secret_id = bao.approle(f"role-{kv_path}", [kv_path])
    secret_file = tmp_path / "secret-id"  # as a mounted file
    secret_file.write_text(secret_id + "\n")
    approle = {
        "vault_auth": "approle",
        "vault_token": "",
        "vault_role_id": role_id,
        "vault_secret_id_file": str(secret_file),
    }
    url = "postgresql+asyncpg://mongars@127.0.0.1:5432/mongars"
    settings = vault_settings(tmp_path, bao, kv_path, secrets=approle, database_url=url)
    resolved = resolve_settings(settings)
    assert resolved is not None
    assert resolved.settings.secret_key.get_secret_value() == JWT_1
    assert resolved.settings.database_url == (
        "postgresql+asyncpg://mongars:pg-pass-1@127.0.0.1:5432/mongars"
    )
    assert settings.database_url == url  # the configured settings are left as they were
    # The same role may not read another entry.
    other = f"{kv_path}-other"
    bao.put(other, secret_key=JWT_2)
    denied = vault_settings(tmp_path, bao, other, secrets=approle)
    with pytest.raises(SecretsUnavailable, match=f"denied reading secret/{other} with approle"):
        resolve_settings(denied)
    # A wrong secret id: the login itself is refused, clearly.
    secret_file.write_text("not-the-secret-id")
    with pytest.raises(SecretsUnavailable, match="refused the AppRole login"):
        resolve_settings(settings)


def test_an_expired_approle_token_is_replaced_by_a_new_login(
    tmp_path: Path, bao: Bao, kv_path: str
) -> None:
    bao.put(kv_path, secret_key=JWT_1)
    role_id, secret_id = bao.approle(f"short-{kv_path}", [kv_path], token_ttl="1s")
    approle = {"vault_auth": "approle", "vault_token": "", "vault_role_id": role_id}
    approle["vault_secret_id"] = secret_id
    resolved = resolve_settings(vault_settings(tmp_path, bao, kv_path, secrets=approle))
    assert resolved is not None
    first = resolved.reader._client
    time.sleep(1.5)  # the token expires
    expired = hvac.Client(url=bao.url, token=first.token, timeout=5)
    with pytest.raises(hvac.exceptions.Forbidden):
        expired.secrets.kv.v2.read_secret_version(
            path=kv_path, mount_point="secret", raise_on_deleted_version=True
        )
    bao.put(kv_path, secret_key=JWT_2)
    assert resolved.reader.read(("secret_key",)).values["secret_key"] == JWT_2
    assert resolved.reader._client is not first  # logged in again
    resolved.reader.close()


def test_unreachable_vault_fails_the_start_without_fallback(
    tmp_path: Path, start: Callable[..., TestClient]
) -> None:
    with refused_url() as url:
        settings = make_settings(
            tmp_path,
            secret_key="",
            secrets={"backend": "vault", "vault_addr": url, "vault_token": "t", "timeout_s": 2},
        )
        with pytest.raises(SecretsUnavailable, match=f"Vault at {url} unreachable: .*refused"):
            start(settings, llm=ScriptedLLM())
    assert not (settings.data_dir / "secret_key").exists()
    with pytest.raises(SecretsUnavailable, match="comes from Vault"):
        ensure_secret_key(settings)  # never a generated secret in Vault's place


def test_missing_key_is_named(tmp_path: Path, bao: Bao, kv_path: str) -> None:
    bao.put(kv_path, llm_api_key="sk-1")
    with pytest.raises(
        SecretsUnavailable, match=f"Vault key 'secret_key' missing at secret/{kv_path}"
    ):
        resolve_settings(vault_settings(tmp_path, bao, kv_path))
    # A PostgreSQL URL needs the password from Vault too.
    bao.put(kv_path, secret_key=JWT_1)
    pg = vault_settings(tmp_path, bao, kv_path, database_url="postgresql+asyncpg://m@127.0.0.1/m")
    with pytest.raises(SecretsUnavailable, match="Vault key 'database_password' missing"):
        resolve_settings(pg)
    # No entry at all.
    with pytest.raises(SecretsUnavailable, match=f"no KV v2 entry at secret/{kv_path}-none"):
        resolve_settings(vault_settings(tmp_path, bao, f"{kv_path}-none"))


def test_wrong_token_is_refused_clearly(tmp_path: Path, bao: Bao, kv_path: str) -> None:
    bao.put(kv_path, secret_key=JWT_1)
    settings = vault_settings(tmp_path, bao, kv_path, secrets={"vault_token": "wrong-token"})
    with pytest.raises(SecretsUnavailable, match=r"denied reading .* permission denied"):
        resolve_settings(settings)


def test_production_refuses_a_weak_secret_from_vault(
    tmp_path: Path, bao: Bao, kv_path: str
) -> None:
    bao.put(kv_path, secret_key="changeme")
    settings = vault_settings(tmp_path, bao, kv_path, env="production")
    with pytest.raises(SecretsUnavailable, match=r"Vault key 'secret_key' at .* real secret"):
        resolve_settings(settings)


# --- rotation ----------------------------------------------------------------------------


def test_rotation_is_picked_up_by_the_refresh_loop(
    tmp_path: Path, bao: Bao, kv_path: str, start: Callable[..., TestClient]
) -> None:
    bao.put(kv_path, secret_key=JWT_1, llm_api_key="sk-one")
    with serve(KeyedOpenAI()) as fake:
        settings = vault_settings(
            tmp_path,
            bao,
            kv_path,
            secrets={"refresh_s": 0.2},
            llm={"provider": "openai", "base_url": fake.url, "model": "m1"},
        )
        api = Api(start(settings))  # the real OpenAI-compatible provider
        old = api.setup_admin()
        assert api.client.get("/ready").status_code == 200
        assert fake.authorizations[-1] == "Bearer sk-one"

        version = bao.put(kv_path, secret_key=JWT_2, llm_api_key="sk-two")
        wait_for(lambda: api.runtime.secrets.version == version)

        assert api.runtime.secret == JWT_2
        # Documented choice: rotating the secret logs everyone out.
        assert api.client.get("/api/v1/user/me", headers=old).status_code == 401
        new = api.login("admin", PASSWORD)
        assert api.client.get("/api/v1/user/me", headers=new).status_code == 200
        # The provider's next request sends the new key.
        assert api.client.get("/ready").status_code == 200
        assert fake.authorizations[-1] == "Bearer sk-two"
        metrics = api.client.get("/metrics").text
        assert metric(metrics, "secrets_rotations_total", 'key="secret_key"') == 1
        assert metric(metrics, "secrets_rotations_total", 'key="llm_api_key"') == 1


def test_refresh_keeps_the_values_in_use_when_vault_fails(
    tmp_path: Path, bao: Bao, kv_path: str, start: Callable[..., TestClient]
) -> None:
    bao.put(kv_path, secret_key=JWT_1)
    api = Api(start(vault_settings(tmp_path, bao, kv_path), llm=ScriptedLLM()))
    refresher = api.runtime.secrets
    headers = api.setup_admin()
    bao.client.secrets.kv.v2.delete_metadata_and_all_versions(path=kv_path, mount_point="secret")
    assert api.client.portal.call(refresher.refresh) == []  # type: ignore[union-attr]
    assert api.runtime.secret == JWT_1
    assert api.client.get("/api/v1/user/me", headers=headers).status_code == 200
    assert metric(api.client.get("/metrics").text, "secrets_refresh_failures_total") == 1


# --- settings and the command line ------------------------------------------------------


def test_settings_refuse_an_incomplete_or_contradictory_vault_setup(tmp_path: Path) -> None:
    vault = {"backend": "vault", "vault_addr": "http://127.0.0.1:8200", "vault_token": "t"}
    with pytest.raises(ValidationError, match="VAULT_ADDR"):
        make_settings(tmp_path, secret_key="", secrets={"backend": "vault", "vault_token": "t"})
    with pytest.raises(ValidationError, match="VAULT_TOKEN"):
        make_settings(tmp_path, secret_key="", secrets={**vault, "vault_token": ""})
    with pytest.raises(ValidationError, match="ROLE_ID"):
        make_settings(tmp_path, secret_key="", secrets={**vault, "vault_auth": "approle"})
    with pytest.raises(ValidationError, match="MONGARS_SECRET_KEY is set"):
        make_settings(tmp_path, secrets=vault)  # the test secret_key is set
    with pytest.raises(ValidationError, match="holds a password"):
        make_settings(tmp_path, secret_key="", secrets=vault, database_url="postgresql://u:p@h/d")
    # Production does not ask for MONGARS_SECRET_KEY: Vault's is checked at start.
    settings = make_settings(tmp_path, secret_key="", secrets=vault, env="production")
    assert settings.secrets.backend == "vault"


def test_serve_exits_with_one_clear_line_when_vault_is_unreachable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGARS_", "VAULT_"))}
    with refused_url() as url:
        env |= {
            "MONGARS_DATA_DIR": str(tmp_path / "data"),
            "MONGARS_SECRETS__BACKEND": "vault",
            "MONGARS_SECRETS__VAULT_ADDR": url,
            "MONGARS_SECRETS__VAULT_TOKEN": "t",
            "MONGARS_SECRETS__TIMEOUT_S": "2",
            "COLUMNS": "80",
        }
        done = subprocess.run(
            [sys.executable, "-m", "mongars.cli", "serve"],
            cwd=tmp_path,  # no .env from the checkout
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: Vault at {url} unreachable: ")
    assert not (tmp_path / "data" / "secret_key").exists()


# --- the database password ---------------------------------------------------------------


@pytest.mark.postgres
def test_database_password_rotation_reaches_new_connections(
    tmp_path: Path,
    bao: Bao,
    kv_path: str,
    postgres_url: str,
    start: Callable[..., TestClient],
) -> None:
    """A role whose login needs its password (scram) on the shared PostgreSQL: the URL
    holds no password, Vault gives it, a rotation reaches the next new connection."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    role = f"r_{kv_path[-12:]}"
    admin = make_url(postgres_url).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)

    async def as_admin(*sql: str, database: str = "postgres") -> str:
        conn = await asyncpg.connect(dsn.replace("/postgres?", f"/{database}?"))
        try:
            hba = str(await conn.fetchval("SHOW hba_file"))
            for statement in sql:
                await conn.execute(statement)
            return hba
        finally:
            await conn.close()

    hba = Path(asyncio.run(as_admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pass-one'")))
    before = hba.read_text()
    hba.write_text(f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n{before}")
    try:
        asyncio.run(as_admin(f"CREATE DATABASE {role} OWNER {role}", "SELECT pg_reload_conf()"))
        asyncio.run(as_admin("CREATE EXTENSION vector", database=role))  # needs a superuser
        url = make_url(postgres_url).set(username=role, password=None, database=role)
        bao.put(kv_path, secret_key=JWT_1, database_password="pass-one")
        settings = vault_settings(
            tmp_path,
            bao,
            kv_path,
            secrets={"refresh_s": 0.2},
            database_url=url.render_as_string(hide_password=False),
        )
        api = Api(start(settings, llm=ScriptedLLM()))  # migrations ran as the role
        api.setup_admin()

        asyncio.run(as_admin(f"ALTER ROLE {role} PASSWORD 'pass-two'"))
        version = bao.put(kv_path, secret_key=JWT_1, database_password="pass-two")
        wait_for(lambda: api.runtime.secrets.version == version)
        api.client.portal.call(api.runtime.engine.dispose)  # type: ignore[union-attr]
        api.login("admin")  # a new connection, with the new password

        async def connect(password: str) -> None:
            target = url.set(drivername="postgresql", password=password)
            conn = await asyncpg.connect(target.render_as_string(hide_password=False))
            await conn.close()

        with pytest.raises(asyncpg.InvalidPasswordError):
            asyncio.run(connect("pass-one"))  # the password is checked: the old one fails
    finally:
        hba.write_text(before)
        asyncio.run(as_admin("SELECT pg_reload_conf()"))
