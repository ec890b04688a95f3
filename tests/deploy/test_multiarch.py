"""The multi-architecture image (`make image-multiarch`, docs/image.md "Several
architectures").

Builds linux/amd64 and linux/arm64 into one manifest list the offline way: local Debian
bases (the arm64 one made under qemu), one wheelhouse holding both architectures' wheels
(the arm64 ones from PyPI's platform wheels, llama-cpp-python cross-compiled here), no
network in the builds. Then starts the arm64 image under qemu-user emulation and chats
with the embedded model through it. About 45 minutes on a fresh machine, so it is not
part of CI: `make test-multiarch` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.podman import free_port, limits, logs, podman, wait_ready

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = os.environ.get("MONGARS_TEST_MANIFEST", "localhost/mongars:multiarch-test")
BUILD_TIMEOUT_S = 5400
# the build runs in the module's fixture: the whole module gets the build's time
pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT_S + 1200)]


@pytest.fixture(scope="module")
def manifest() -> str:
    if os.environ.get("MONGARS_MULTIARCH_TESTS") != "1":
        pytest.skip("multi-arch tests run with MONGARS_MULTIARCH_TESTS=1 (make test-multiarch)")
    for tool, package in [
        ("podman", "podman"),
        ("mmdebstrap", "mmdebstrap"),
        ("qemu-aarch64-static", "qemu-user-static"),
        ("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu"),
    ]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package})")
    if os.geteuid() != 0:
        pytest.skip("the bases are made and binfmt_misc is registered as root")
    start = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "deploy" / "image" / "multiarch.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "OFFLINE": "1", "MANIFEST": MANIFEST},
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    print(f"\n{MANIFEST} built in {time.monotonic() - start:.0f} s")
    print("\n".join(line for line in done.stderr.splitlines() if " built in " in line))
    return MANIFEST


@pytest.fixture
def container() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "--force", "--time", "5", name, check=False)


def test_the_manifest_lists_amd64_and_arm64(manifest: str) -> None:
    listed = json.loads(podman("manifest", "inspect", manifest))
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in listed["manifests"]}
    assert {("linux", "amd64"), ("linux", "arm64")} <= platforms
    for arch in ("amd64", "arm64"):
        found = podman("image", "inspect", "--format", "{{.Architecture}}", f"{manifest}-{arch}")
        assert found.strip() == arch
        size = int(podman("image", "inspect", "--format", "{{.Size}}", f"{manifest}-{arch}"))
        print(f"\n{arch} image: {size / 1e6:.0f} MB")


def test_the_arm64_image_serves_a_chat_under_emulation(manifest: str, container: list[str]) -> None:
    name = f"mongars-arm64-{uuid.uuid4().hex[:8]}"
    container.append(name)
    port = free_port()
    start = time.monotonic()
    podman(
        "run", "--detach", "--name", name, "--network", "host", *limits(),
        "--env", f"MONGARS_PORT={port}", "--env", "MONGARS_HOST=127.0.0.1",
        f"{manifest}-arm64",
    )  # fmt: skip
    # Its programs are arm64 ones (run through qemu-user here).
    assert podman("exec", name, "uname", "-m").strip() == "aarch64"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        # about 8 min under qemu here: the embedder's reference check (ONNX Runtime)
        ready = wait_ready(client, name, start, 1500)
        print(f"\narm64 under qemu: cold start to /ready 200 in {time.monotonic() - start:.0f} s")
        assert ready.json()["checks"] == {"database": True, "model": True}
        password = "correct horse battery staple"
        podman(
            "exec", "--env", f"MONGARS_NEW_PASSWORD={password}", name,
            "mongars", "users", "create", "tester", timeout=300,
        )  # fmt: skip
        token = client.post("/token", data={"username": "tester", "password": password})
        assert token.status_code == 200, token.text
        asked = time.monotonic()
        chat = client.post(
            "/api/v1/conversation/chat",
            json={"message": "What is the capital of France?"},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=900,
        )
        assert chat.status_code == 200, chat.text + logs(name)
        answer = chat.json()
        assert answer["response"].strip(), answer
        print(f"arm64 under qemu: a chat answered in {time.monotonic() - asked:.0f} s")
