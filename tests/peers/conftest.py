"""Three real nodes (uvicorn processes on 127.0.0.1), each with its own database, keys
and, for node C, its own TLS certificate (trustme)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.peers.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN, PASSWORD = "root", "admin-password-123"


@dataclass
class Node:
    name: str
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    verify: ssl.SSLContext | bool = True
    env: dict[str, str] = field(default_factory=dict)
    proxy: FaultProxy | None = None  # peers reach this node through it
    token: str = ""
    node_id: str = ""
    client: httpx.Client = field(init=False)

    def start_client(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30, verify=self.verify)
        r = self.client.post("/token", data={"username": ADMIN, "password": PASSWORD})
        r.raise_for_status()
        self.token = r.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        self.node_id = self.client.get("/api/v1/peer/node").json()["node_id"]

    def logs(self) -> str:
        return self.log.read_text()[-4000:]


def node_env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env.update(
        MONGARS_DATA_DIR=str(data_dir),
        MONGARS_SECRET_KEY="test-secret-key-that-is-long-enough-000",
        MONGARS_PUBLIC_URL=url,
        MONGARS_PEERS__ENABLED="true",
        MONGARS_PEERS__ALLOW_HTTP="true",
        MONGARS_PEERS__TELEMETRY_INTERVAL_S="0.5",
        MONGARS_MEMORY__ENABLED="false",
        MONGARS_RESEARCH__DOCUMENTS="false",
        MONGARS_SCHEDULER__ENABLED="false",
        MONGARS_EVOLUTION__ENABLED="false",
        MONGARS_LOG_LEVEL="info",
        # Busy loops chat back to back; the default 30/minute would turn them into 429s.
        MONGARS_RATE_LIMITS__CHAT="100000/minute",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def start_nodes(
    base: Path, specs: dict[str, dict[str, str]], proxied: tuple[str, ...] = ()
) -> dict[str, Node]:
    """Create each node's admin (the CLI, in parallel), then start the servers. Peers
    reach a node named in ``proxied`` through a fault proxy (its public URL)."""
    plans = {}
    proxies = {}
    for name, extra in specs.items():
        port = free_port()
        scheme = "https" if "MONGARS_PEERS__TLS_CERTFILE" in extra else "http"
        url = f"{scheme}://127.0.0.1:{port}"
        public = url
        if name in proxied:
            proxies[name] = FaultProxy(port).start()
            public = proxies[name].url
        data_dir = base / name
        plans[name] = (port, url, data_dir, node_env(data_dir, public, **extra))
    creators = [
        subprocess.Popen(
            [str(BIN / "mongars"), "users", "create", ADMIN, "--admin"],
            env={**env, "MONGARS_NEW_PASSWORD": PASSWORD},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _, _, _, env in plans.values()
    ]
    for proc in creators:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    nodes = {}
    for name, (port, url, data_dir, env) in plans.items():
        log = base / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.peers.node", str(port)],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        cafile = env.get("TEST_CA")
        verify = ssl.create_default_context(cafile=cafile) if cafile else True
        nodes[name] = Node(
            name, url, data_dir, proc, log, verify=verify, env=env, proxy=proxies.get(name)
        )
    deadline = time.monotonic() + 90
    for node in nodes.values():
        while True:
            if node.proc.poll() is not None:
                pytest.fail(f"node {node.name} exited: {node.logs()}")
            try:
                if httpx.get(f"{node.url}/ready", timeout=2, verify=node.verify).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"node {node.name} not ready: {node.logs()}")
            time.sleep(0.2)
        node.start_client()
    return nodes


def stop_nodes(nodes: dict[str, Node]) -> None:
    for node in nodes.values():
        node.client.close()
        node.proc.terminate()
        if node.proxy is not None:
            node.proxy.stop()
    for node in nodes.values():
        try:
            node.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.proc.kill()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    import trustme

    base = tmp_path_factory.mktemp("mesh")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = base / "c.pem", base / "c.key", base / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    tls = {
        "MONGARS_PEERS__TLS_CERTFILE": str(certfile),
        "MONGARS_PEERS__TLS_KEYFILE": str(keyfile),
        "TEST_CA": str(cafile),
    }
    started = start_nodes(base, {"a": {}, "b": {}, "c": tls})
    try:
        yield started
    finally:
        stop_nodes(started)


def pair(inviter: Node, joiner: Node, same_owner: bool = False) -> None:
    r = inviter.client.post("/api/v1/peer/invites", json={"same_owner": same_owner})
    assert r.status_code == 201, r.text
    r = joiner.client.post(
        "/api/v1/peer/join", json={"invite": r.json()["invite"], "same_owner": same_owner}
    )
    assert r.status_code == 200, (r.text, inviter.logs())
    assert r.json() == {"node_id": inviter.node_id, "state": "pending"}
    r = inviter.client.post(f"/api/v1/peer/requests/{joiner.node_id}/approve", json={})
    assert r.status_code == 200, (r.text, joiner.logs())
    assert r.json()["state"] == "paired"
