"""A live `mongars serve` (real embedded model, SQLite, fresh data dir) for SDK tests.

Both SDKs (sdk/python, sdk/typescript) are tested against this one process: an admin
`sdk-admin` and a user `sdk-user` exist before it starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ADMIN = ("sdk-admin", "admin-password-123")
USER = ("sdk-user", "user-password-123")
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    base_url: str
    admin: tuple[str, str]
    user: tuple[str, str]
    data_dir: Path
    log: Path


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env.update(
        MONGARS_DATA_DIR=str(data_dir),
        MONGARS_LLM__MAX_TOKENS="24",  # short answers: the SDK is under test, not the model
        MONGARS_LLM__THREADS="1",
        MONGARS_EVOLUTION__ENABLED="false",
        MONGARS_LOG_LEVEL="warning",
    )
    return env


@pytest.fixture(scope="session")
def mongars_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("sdk-server")
    env = _env(data_dir)
    for (name, password), admin in ((ADMIN, True), (USER, False)):
        args = [str(BIN / "mongars"), "users", "create", name] + (["--admin"] if admin else [])
        subprocess.run(
            args, env={**env, "MONGARS_NEW_PASSWORD": password}, check=True, capture_output=True
        )
    port = free_port()
    log = data_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "mongars"), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mongars serve exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mongars serve not ready in 120 s: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(base_url, ADMIN, USER, data_dir, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def node_available() -> bool:
    return shutil.which("node") is not None
