"""Adapter replication between paired nodes: P produces; C (same owner) replicates
through a fault proxy in front of P; X (same owner) serves another base model; O is
paired as another owner."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mongars.bench.mesh import write_completed_run
from tests.adapters.factory import GOOD_METRICS
from tests.peers.conftest import Node, pair, start_nodes, stop_nodes

SIZE = 3 * 1024 * 1024 + 123  # several chunks, not a multiple of the chunk size


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _approved_adapter(node: Node, content: bytes) -> str:
    run_id = write_completed_run(node.data_dir, content, GOOD_METRICS)
    r = node.client.post("/api/v1/adapters/register", json={"run_id": run_id})
    assert r.status_code == 201, r.text
    version = r.json()
    r = node.client.post(f"/api/v1/adapters/{version['id']}/approve", json={"note": "good"})
    assert r.status_code == 200, r.text
    return str(version["sha256"])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    base = tmp_path_factory.mktemp("replication")
    started = start_nodes(
        base,
        {"p": {}, "c": {}, "x": {"MONGARS_LLM__EMBEDDED_MODEL": "gemma3-270m"}, "o": {}},
        proxied=("p",),
    )
    try:
        p = started["p"]
        pair(p, started["c"], same_owner=True)
        pair(p, started["x"], same_owner=True)
        pair(p, started["o"], same_owner=False)
        yield started
    finally:
        stop_nodes(started)


def test_replication_verifies_resumes_and_installs_a_candidate(mesh: dict[str, Node]) -> None:
    p, c = mesh["p"], mesh["c"]
    assert p.proxy is not None
    content = os.urandom(SIZE)
    sha = _approved_adapter(p, content)
    offered = c.client.get(f"/api/v1/peers/{p.node_id}/adapters")
    assert offered.status_code == 200, offered.text
    (manifest,) = offered.json()
    assert manifest["adapter"] == sha and manifest["installed"] is False
    assert manifest["files"] == [{"name": "adapter.gguf", "size": SIZE, "sha256": sha}]
    assert manifest["metrics"]["perplexity_ratio"] == 0.75
    # First the transfer is cut twice mid-file; each attempt resumes where it stopped.
    p.proxy.faults.cut_after = 1_200_000
    connections = p.proxy.connections
    r = c.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={"sha256": sha})
    p.proxy.faults.cut_after = None
    assert r.status_code == 200, (r.text, c.logs())
    (installed,) = r.json()["installed"]
    assert installed["sha256"] == sha and installed["state"] == "candidate"
    assert [g["code"] for g in installed["gate"]] == ["replicated"]  # C's admin decides
    assert p.proxy.connections - connections >= 4  # list + at least 3 file attempts
    stored = c.data_dir / "adapters" / sha / "adapter.gguf"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
    assert not list((c.data_dir / "adapters" / ".incoming").glob("*.part"))
    # Pulled again: nothing to do.
    r = c.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={})
    assert r.json()["installed"] == [] and r.json()["skipped"][0]["reason"] == "already here"


def test_a_corrupted_transfer_is_refused_then_fetched_again(mesh: dict[str, Node]) -> None:
    p, c = mesh["p"], mesh["c"]
    assert p.proxy is not None
    sha = _approved_adapter(p, os.urandom(SIZE))
    # One byte flipped at that offset on every connection, until the consumer has
    # refused a corrupted copy; then the proxy is clean and it fetches the file again.
    p.proxy.faults.corrupt_at = 2_000_000

    def clear_after_first_refusal() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "hash mismatch, refused" in c.log.read_text():
                break
            time.sleep(0.05)
        p.proxy.faults.corrupt_at = None  # type: ignore[union-attr]

    watcher = threading.Thread(target=clear_after_first_refusal, daemon=True)
    watcher.start()
    r = c.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={"sha256": sha})
    watcher.join()
    assert r.status_code == 200, (r.text, c.logs())
    assert r.json()["installed"][0]["sha256"] == sha
    assert "hash mismatch, refused" in c.log.read_text()


def test_replication_needs_the_same_owner_and_the_same_base_model(mesh: dict[str, Node]) -> None:
    p, x, o = mesh["p"], mesh["x"], mesh["o"]
    sha = _approved_adapter(p, os.urandom(4096))
    r = x.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={"sha256": sha})
    assert r.status_code == 409 and "base model" in r.json()["detail"]
    r = x.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={})
    assert r.status_code == 200 and r.json()["installed"] == []
    assert {s["reason"] for s in r.json()["skipped"]} == {"other base model"}
    # Another owner: refused on its own side, and P would refuse it too.
    r = o.client.post(f"/api/v1/peers/{p.node_id}/adapters/pull", json={})
    assert r.status_code == 403
