"""Two nodes on either side of a real link: node B in its own network namespace, joined
to this one by a veth pair with link-local addresses (169.254.77.0/30). Taking the
link down partitions them; bringing it up heals. Skipped where namespaces cannot be
made (not root, no iproute2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.peers.conftest import ADMIN, BIN, PASSWORD, ROOT, Node, node_env, pair, stop_nodes

A_IP, B_IP = "169.254.77.1", "169.254.77.2"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _namespaces_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"mgprobe{os.getpid()}"
    ok = _ip("netns", "add", name).returncode == 0
    _ip("netns", "del", name)
    return ok


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _namespaces_available(), reason="network namespaces need root + ip"),
]


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


def _start(name: str, base: Path, host: str, netns: str | None) -> Node:
    port = free_port()
    url = f"http://{host}:{port}"
    data_dir = base / name
    env = node_env(
        data_dir,
        url,
        TEST_HOST=host,
        MONGARS_PEERS__STALE_AFTER_S="3",
        MONGARS_PEERS__TIMEOUT_S="2",
    )
    created = subprocess.run(
        [str(BIN / "mongars"), "users", "create", ADMIN, "--admin"],
        env={**env, "MONGARS_NEW_PASSWORD": PASSWORD},
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    prefix = ["ip", "netns", "exec", netns] if netns else []
    log = base / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tests.peers.node", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    node = Node(name, url, data_dir, proc, log, env=env)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"node {name} did not start: {node.logs()}")
        time.sleep(0.3)
    node.start_client()
    return node


@pytest.fixture
def link(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    ns, va, vb = f"mgn{tag}", f"mga{tag}", f"mgb{tag}"
    steps = [
        ("netns", "add", ns),
        ("link", "add", va, "type", "veth", "peer", "name", vb),
        ("link", "set", vb, "netns", ns),
        ("addr", "add", f"{A_IP}/30", "dev", va),
        ("link", "set", va, "up"),
        ("netns", "exec", ns, "ip", "addr", "add", f"{B_IP}/30", "dev", vb),
        ("netns", "exec", ns, "ip", "link", "set", vb, "up"),
        ("netns", "exec", ns, "ip", "link", "set", "lo", "up"),
    ]
    nodes: dict[str, Node] = {}
    try:
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, (step, done.stderr)
        nodes["a"] = _start("a", tmp_path, A_IP, None)
        nodes["b"] = _start("b", tmp_path, B_IP, ns)
        yield {"nodes": nodes, "veth": va}
    finally:
        stop_nodes(nodes)
        _ip("link", "del", va)
        _ip("netns", "del", ns)


def _peer(node: Node, other: Node) -> dict[str, Any]:
    return node.client.get(f"/api/v1/peers/{other.node_id}").json()  # type: ignore[no-any-return]


def test_a_partition_bans_the_peer_and_healing_restores_it(link: dict[str, Any]) -> None:
    a, b = link["nodes"]["a"], link["nodes"]["b"]
    pair(a, b)
    _wait(lambda: _peer(a, b)["healthy"] and _peer(a, b)["latency_ms"] is not None)
    assert _ip("link", "set", link["veth"], "down").returncode == 0
    try:
        _wait(lambda: _peer(a, b)["failures"] >= 1 and not _peer(a, b)["healthy"])
        assert _peer(a, b)["banned_until"] is not None
        assert _peer(a, b)["state"] == "paired"  # unreachable is not revoked
    finally:
        assert _ip("link", "set", link["veth"], "up").returncode == 0
    _wait(lambda: _peer(a, b)["failures"] == 0 and _peer(a, b)["healthy"], timeout=60)
    assert _peer(a, b)["banned_until"] is None
