"""Delegated work across three real nodes: D hands work to W1 and W2 when busy.

W1 is honest and reached through a fault proxy; W2's model answers differently (a
spot check must catch it). All are paired with D as the same owner."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.peers.conftest import Node, pair, start_nodes, stop_nodes

SLOW = "0.15"  # seconds per word: a 6-word answer keeps a node busy for ~1 s


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _peer(node: Node, other: Node) -> dict[str, Any]:
    r = node.client.get(f"/api/v1/peers/{other.node_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    base = tmp_path_factory.mktemp("work")
    embed = {"MONGARS_MEMORY__ENABLED": "true", "MONGARS_RESEARCH__DOCUMENTS": "true"}
    started = start_nodes(
        base,
        {
            "d": {
                "MONGARS_PEERS__DELEGATE": '["chat", "embed"]',
                "MONGARS_PEERS__SPOT_CHECK_SHARE": "1",
                "MONGARS_LLM__TEMPERATURE": "0",
                "TEST_LLM_DELAY": SLOW,
                # Small chunks: a short document makes many embedding batches.
                "MONGARS_RESEARCH__CHUNK_TOKENS": "64",
                "MONGARS_RESEARCH__CHUNK_OVERLAP_TOKENS": "8",
                **embed,
            },
            "w1": {"MONGARS_PEERS__ACCEPT": '["chat", "embed"]', "TEST_LLM_DELAY": SLOW, **embed},
            "w2": {
                "MONGARS_PEERS__ACCEPT": '["chat"]',
                "TEST_LLM_DELAY": SLOW,
                "TEST_LLM_REPLY": "Something else entirely, from a dishonest node.",
            },
        },
        proxied=("w1",),
    )
    try:
        d, w1, w2 = started["d"], started["w1"], started["w2"]
        pair(d, w1, same_owner=True)
        pair(d, w2, same_owner=True)
        _wait(lambda: _peer(d, w1)["healthy"] and _peer(d, w2)["healthy"])
        yield started
    finally:
        stop_nodes(started)


def _chat(node: Node, message: str) -> httpx.Response:
    return node.client.post("/api/v1/conversation/chat", json={"message": message})


class _busy:  # used like a function
    """``loops`` clients chatting back to back with ``node`` for about ``seconds``.

    One loop leaves gaps between answers (the turn is saved, memory recalled); two keep
    a worker generating throughout, so its load factor stays >= 1 whenever D looks. D
    itself gets one loop: a second would be handed to a worker and skew the choice."""

    def __init__(self, node: Node, seconds: float, loops: int = 1) -> None:
        deadline = time.monotonic() + seconds

        def run() -> None:
            while time.monotonic() < deadline:
                _chat(node, "keep busy")

        self.threads = [threading.Thread(target=run, daemon=True) for _ in range(loops)]
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


def _load(d: Node, w: Node) -> float:
    return float(_peer(d, w)["load"] or 0.0)


def test_a_busy_node_hands_chat_to_the_least_loaded_peer(work: dict[str, Node]) -> None:
    d, w1, w2 = work["d"], work["w1"], work["w2"]
    # W2 busy, W1 idle: D, itself busy, must pick W1 (two choices, lower load wins).
    busy_w2 = _busy(w2, 6, loops=2)
    _wait(lambda: _load(d, w2) >= 1.0)
    busy_d = _busy(d, 4)
    time.sleep(0.5)
    r = _chat(d, "hello while busy")
    assert r.status_code == 200, (r.text, d.logs())
    assert r.json()["answered_by"] == w1.node_id
    assert r.json()["response"] == "Hello there. How can I help?"
    busy_d.join()
    busy_w2.join()
    # Idle again: D answers itself.
    _wait(lambda: d.client.get("/api/v1/peers").status_code == 200)
    r = _chat(d, "hello when idle")
    assert r.json()["answered_by"] is None
    # The spot check (temperature 0, share 1) re-ran W1's answer here and agreed.
    _wait(lambda: _peer(d, w1)["state"] == "paired")


def test_a_spot_check_mismatch_quarantines_the_peer(work: dict[str, Node]) -> None:
    d, w1, w2 = work["d"], work["w1"], work["w2"]
    busy_w1 = _busy(w1, 8, loops=2)
    _wait(lambda: _load(d, w1) >= 1.0 and _load(d, w2) < 1.0)
    busy_d = _busy(d, 4)
    time.sleep(0.5)
    r = _chat(d, "who answers?")
    assert r.status_code == 200, r.text
    assert r.json()["answered_by"] == w2.node_id  # the idle one, which lies
    _wait(lambda: _peer(d, w2)["state"] == "quarantined")
    assert "spot check" in _peer(d, w2)["note"]
    busy_d.join()
    busy_w1.join()
    # Quarantined: refused like a revoked peer until an admin restores it.
    r = d.client.post(f"/api/v1/peers/{w2.node_id}/restore", json={"note": "checked"})
    assert r.json()["state"] == "paired"
    r = d.client.post(f"/api/v1/peers/{w2.node_id}/restore", json={})
    assert r.status_code == 409


def test_a_failing_peer_is_banned_with_backoff_then_recovers(work: dict[str, Node]) -> None:
    d, w1 = work["d"], work["w1"]
    assert w1.proxy is not None
    w1.proxy.faults.reset = True
    _wait(lambda: _peer(d, w1)["failures"] >= 2)
    seen = _peer(d, w1)
    assert seen["banned_until"] is not None and seen["reputation"] < 0.9
    # Handing work to a banned peer does not happen: D answers itself.
    busy_d = _busy(d, 3)
    time.sleep(0.5)
    assert _chat(d, "while W1 is down").json()["answered_by"] != w1.node_id
    busy_d.join()
    w1.proxy.faults.reset = False
    _wait(lambda: _peer(d, w1)["failures"] == 0, timeout=40)  # the ban ran out, then success
    assert _peer(d, w1)["banned_until"] is None


def test_a_peer_cut_before_its_first_token_falls_back_here(work: dict[str, Node]) -> None:
    d, w1, w2 = work["d"], work["w1"], work["w2"]
    assert w1.proxy is not None
    _wait(lambda: _peer(d, w1)["failures"] == 0 and _peer(d, w1)["healthy"])
    # W1 must be the pick: W2 is quarantined by now (test 3's chat went to it and its
    # spot check failed again), or else busy.
    busy_w2 = _busy(w2, 6 if _peer(d, w2)["state"] == "paired" else 0, loops=2)
    _wait(lambda: _peer(d, w2)["state"] == "quarantined" or _load(d, w2) >= 1.0)
    w1.proxy.faults.cut_after = 0  # the work request reaches nothing back
    busy_d = _busy(d, 3)
    time.sleep(0.5)
    r = _chat(d, "fall back")
    w1.proxy.faults.cut_after = None
    assert r.status_code == 200, r.text
    assert r.json()["answered_by"] is None  # D's own model answered
    busy_d.join()
    busy_w2.join()


def test_a_long_document_is_embedded_with_a_peers_help(work: dict[str, Node]) -> None:
    d, w1 = work["d"], work["w1"]
    _wait(lambda: _peer(d, w1)["healthy"] and _peer(d, w1)["banned_until"] is None)
    paragraphs = [
        f"Section {n}. The lighthouse keeper logged storm {n} in detail." for n in range(200)
    ]
    text = "\n\n".join(paragraphs)
    before = _peer(d, w1)["work_sent"].get("embed", 0)
    r = d.client.post(
        "/api/v1/documents",
        files={"file": ("log.txt", text.encode(), "text/plain")},
        data={"collection": "notes"},
    )
    assert r.status_code == 201, (r.text, d.logs())
    assert _peer(d, w1)["work_sent"].get("embed", 0) > before
    hits = d.client.post("/api/v1/documents/search", json={"query": "storm 17 lighthouse"})
    assert hits.status_code == 200 and hits.json()
    assert _peer(d, w1)["state"] == "paired"  # the spot checks agreed
