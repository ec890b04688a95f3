"""The peer mesh across three real nodes: pairing both ways, TLS pinning, telemetry,
encrypted messages, key rotation, revocation, and the refusal matrix of signed requests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mongars.peers.identity import NodeIdentity
from mongars.peers.signing import sign_headers
from tests.peers.conftest import Node, pair

REFUSED = {"detail": "peer request refused", "code": "not_authenticated"}


def _wait(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _peer(node: Node, other: Node) -> dict:  # type: ignore[type-arg]
    r = node.client.get(f"/api/v1/peers/{other.node_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _identity(node: Node) -> NodeIdentity:
    """The node's own keys, read from its data dir (the test plays that node)."""
    return NodeIdentity.load_or_create(node.data_dir)


def _signed_post(
    sender: NodeIdentity, target: Node, path: str, body: bytes, **kw: object
) -> httpx.Response:
    url = target.url + path
    headers = sign_headers(sender, "POST", url, body, target.node_id, **kw)  # type: ignore[arg-type]
    headers["content-type"] = "application/json"
    return httpx.post(url, content=body, headers=headers, verify=target.verify, timeout=10)


def test_pairing_both_sides_then_telemetry_flows(nodes: dict[str, Node]) -> None:
    a, b = nodes["a"], nodes["b"]
    pair(a, b)
    assert _peer(a, b)["state"] == "paired"
    _wait(lambda: _peer(b, a)["state"] == "paired")
    # Telemetry every 0.5 s: each side sees the other healthy, with latency and load.
    _wait(lambda: _peer(a, b)["healthy"] and _peer(b, a)["healthy"])
    _wait(lambda: _peer(a, b)["latency_ms"] is not None)  # A's own round trip to B
    seen = _peer(a, b)
    assert seen["latency_ms"] is not None and seen["latency_ms"] > 0
    assert seen["telemetry"]["scheduler_id"] == b.node_id
    assert seen["telemetry"]["models"] == ["scripted-model"]
    assert seen["reputation"] > 0.9
    # Reference routes, field names kept.
    assert a.client.get("/api/v1/peer/list").json() == [b.url]
    load = a.client.get("/api/v1/peer/load").json()
    assert set(load) == {
        "scheduler_id",
        "queue_depth",
        "active_workers",
        "concurrency",
        "load_factor",
    }
    envelope = a.client.get("/api/v1/peer/telemetry").json()["telemetry"]
    assert [t["scheduler_id"] for t in envelope][:1] == [a.node_id]
    assert b.node_id in [t["scheduler_id"] for t in envelope]


def test_pairing_over_https_pins_the_invite_certificate(nodes: dict[str, Node]) -> None:
    a, c = nodes["a"], nodes["c"]
    invite = c.client.post("/api/v1/peer/invites", json={}).json()["invite"]
    fingerprint = json.loads(
        __import__("mongars.peers.identity", fromlist=["unb64"]).unb64(invite[5:])
    )["tls_fingerprint"]
    assert fingerprint and len(fingerprint) == 64
    # A wrong pin: the joiner refuses the certificate before sending anything.
    forged = _forge_invite(invite, tls_fingerprint="0" * 64)
    r = a.client.post("/api/v1/peer/join", json={"invite": forged})
    assert r.status_code == 502 and "pinned fingerprint" in r.json()["detail"]
    # The real invite (still unused) pairs over HTTPS.
    r = a.client.post("/api/v1/peer/join", json={"invite": invite})
    assert r.status_code == 200, (r.text, c.logs())
    assert c.client.post(f"/api/v1/peer/requests/{a.node_id}/approve", json={}).status_code == 200
    _wait(lambda: _peer(a, c)["state"] == "paired")
    _wait(lambda: _peer(a, c)["healthy"] and _peer(c, a)["healthy"])


def _forge_invite(invite: str, **changes: object) -> str:
    from mongars.peers.identity import b64, unb64

    data = json.loads(unb64(invite[5:]))
    data.update(changes)
    return "mgi1." + b64(json.dumps(data).encode())


def test_invites_are_single_use_and_checked(nodes: dict[str, Node]) -> None:
    b, c = nodes["b"], nodes["c"]
    invite = b.client.post("/api/v1/peer/invites", json={"ttl_s": 60}).json()["invite"]
    for bad in ("", "hello", "mgi1.!!!", "mgi1." + "A" * 40, "x" * 9000):
        r = c.client.post("/api/v1/peer/join", json={"invite": bad})
        assert r.status_code == 422, (bad[:20], r.text)
    for forged in (
        {"expires_at": 1},
        {"expires_at": "tomorrow"},
        {"node_id": "../../etc"},
        {"sign_key": "A" * 10},
        {"url": 42},
        {"tls_fingerprint": "not-hex"},
    ):
        r = c.client.post("/api/v1/peer/join", json={"invite": _forge_invite(invite, **forged)})
        assert r.status_code == 422, (forged, r.text)
    # A forged secret is refused by the inviter (one generic 401, seen as 502 here).
    r = c.client.post("/api/v1/peer/join", json={"invite": _forge_invite(invite, secret="s" * 43)})
    assert r.status_code == 502
    assert c.client.post("/api/v1/peer/join", json={"invite": invite}).status_code == 200
    # The same invite again: used.
    r = c.client.post("/api/v1/peer/join", json={"invite": invite})
    assert r.status_code == 502
    # B rejects: C is told, and the pair never forms.
    r = b.client.post(f"/api/v1/peer/requests/{c.node_id}/reject", json={"note": "not now"})
    assert r.json()["state"] == "rejected"
    _wait(lambda: _peer(c, b)["state"] == "rejected")
    r = b.client.post(f"/api/v1/peer/requests/{c.node_id}/approve", json={})
    assert r.status_code == 409


def test_signed_request_matrix_refuses_every_tampering(nodes: dict[str, Node]) -> None:
    """Each case is sent as node B (its real key, paired with A) to A, unless it says
    otherwise; every refusal is the same 401 body."""
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    _wait(lambda: _peer(a, b)["state"] == "paired")
    me = _identity(b)
    path = "/api/v1/peer/mesh/telemetry"
    body = json.dumps({"scheduler_id": b.node_id}).encode()
    url = a.url + path

    def send(headers: dict[str, str], content: bytes = body, to: str = url) -> httpx.Response:
        return httpx.post(to, content=content, headers=headers, timeout=10)

    def good() -> dict[str, str]:
        return sign_headers(me, "POST", url, body, a.node_id) | {"content-type": "application/json"}

    assert send(good()).status_code == 200  # the control: a correct request passes
    stranger = NodeIdentity.load_or_create(b.data_dir.parent / "stranger")
    h = good()
    cases: dict[str, httpx.Response] = {
        "tampered body": send(good(), body.replace(b"}", b', "queue_depth": 9}')),
        "tampered digest": send(good() | {"Content-Digest": "sha-256=:" + "A" * 43 + "=:"}),
        "tampered signature": send(good() | {"Signature": "pyhms=:" + "A" * 86 + "==:"}),
        "signature input changed": send(
            good() | {"Signature-Input": h["Signature-Input"].replace("mongars-peer", "other")}
        ),
        "other destination": send(
            sign_headers(me, "POST", url, body, c.node_id) | {"content-type": "application/json"}
        ),
        "other path": send(good(), to=a.url + "/api/v1/peer/mesh/answer"),
        "expired": send(
            sign_headers(
                me,
                "POST",
                url,
                body,
                a.node_id,
                created=datetime.now(UTC) - timedelta(minutes=10),
            )
        ),
        "from the future": send(
            sign_headers(
                me,
                "POST",
                url,
                body,
                a.node_id,
                created=datetime.now(UTC) + timedelta(minutes=10),
            )
        ),
        "too long a lifetime": send(
            sign_headers(me, "POST", url, body, a.node_id, lifetime=timedelta(hours=2))
        ),
        "unknown key": send(sign_headers(stranger, "POST", url, body, a.node_id)),
        "no signature": send({"content-type": "application/json"}),
        "garbage signature input": send(good() | {"Signature-Input": "((("}),
    }
    replayed = good()
    assert send(replayed).status_code == 200
    cases["replayed nonce"] = send(replayed)
    # A message to the reference route from an unpaired node, and a non-admin user.
    cases["message from unknown key"] = send(
        sign_headers(
            stranger, "POST", a.url + "/api/v1/peer/message", b'{"payload":"x"}', a.node_id
        ),
        b'{"payload":"x"}',
        a.url + "/api/v1/peer/message",
    )
    refused = {name: r for name, r in cases.items() if r.status_code == 401 and r.json() == REFUSED}
    assert set(refused) == set(cases), {n: (r.status_code, r.text) for n, r in cases.items()}
    print(f"signed-request matrix: {len(cases)} tampered/replayed/unknown cases, all refused")


def test_messages_are_encrypted_to_the_peer_and_only_admins_read_them(
    nodes: dict[str, Node],
) -> None:
    a, b = nodes["a"], nodes["b"]
    _wait(lambda: _peer(a, b)["state"] == "paired" and _peer(b, a)["state"] == "paired")
    payload = {"hello": "wörld ✓", "n": 1}
    r = a.client.post(f"/api/v1/peers/{b.node_id}/message", json={"payload": payload})
    assert r.status_code == 202, (r.text, b.logs())
    got = b.client.get("/api/v1/peer/messages").json()
    assert got[0]["node_id"] == a.node_id and got[0]["payload"] == payload
    # Bearer tokens do not reach the peer route, and nothing decrypted comes back.
    r = b.client.post("/api/v1/peer/message", json={"payload": "x"})
    assert r.status_code == 401 and r.json() == REFUSED
    # A signed message whose payload is not sealed to B is refused the same way.
    r = _signed_post(_identity(a), b, "/api/v1/peer/message", b'{"payload":"bm90IHNlYWxlZA"}')
    assert r.status_code == 401 and r.json() == REFUSED


def test_key_rotation_is_endorsed_and_old_key_kept_for_grace(nodes: dict[str, Node]) -> None:
    a, b = nodes["a"], nodes["b"]
    _wait(lambda: _peer(a, b)["state"] == "paired")
    old = _identity(b)
    r = b.client.post("/api/v1/peer/keys/rotate")
    assert r.status_code == 200, r.text
    assert a.node_id in r.json()["told"]
    assert _peer(a, b)["kid"] == r.json()["kid"] != old.kid
    new = _identity(b)
    body = json.dumps({"scheduler_id": b.node_id}).encode()
    path = "/api/v1/peer/mesh/telemetry"
    assert _signed_post(new, a, path, body).status_code == 200
    assert _signed_post(old, a, path, body).status_code == 200  # within the grace period
    # A rotation not endorsed by the current key is refused.
    rogue = NodeIdentity.load_or_create(b.data_dir.parent / "rogue")
    forged = json.dumps({"sign_key": "A" * 43, "endorsement": "A" * 86}).encode()
    assert _signed_post(rogue, a, "/api/v1/peer/mesh/rotate", forged).status_code == 401
    _wait(lambda: _peer(a, b)["healthy"])  # telemetry goes on with the new key


def test_revocation_takes_effect_at_once_on_both_sides(nodes: dict[str, Node]) -> None:
    a, b = nodes["a"], nodes["b"]
    _wait(lambda: _peer(a, b)["state"] == "paired")
    r = a.client.delete(f"/api/v1/peers/{b.node_id}")
    assert r.json() == {"node_id": b.node_id, "state": "revoked"}
    body = json.dumps({"scheduler_id": b.node_id}).encode()
    r = _signed_post(_identity(b), a, "/api/v1/peer/mesh/telemetry", body)
    assert r.status_code == 401 and r.json() == REFUSED
    _wait(lambda: _peer(b, a)["state"] == "revoked")
    assert b.url not in a.client.get("/api/v1/peer/list").json()


def test_peer_routes_are_admin_only(nodes: dict[str, Node]) -> None:
    a = nodes["a"]
    anonymous = httpx.get(a.url + "/api/v1/peers")
    assert anonymous.status_code == 401
    r = a.client.post(
        "/api/v1/admin/users", json={"username": "plain", "password": "plain-password-1"}
    )
    assert r.status_code in (200, 201), r.text
    token = httpx.post(
        a.url + "/token", data={"username": "plain", "password": "plain-password-1"}
    ).json()["access_token"]
    user = {"Authorization": f"Bearer {token}"}
    for method, path in [
        ("GET", "/api/v1/peers"),
        ("POST", "/api/v1/peer/invites"),
        ("GET", "/api/v1/peer/messages"),
        ("GET", "/api/v1/peer/telemetry"),
        ("GET", "/api/v1/peer/list"),
    ]:
        r = httpx.request(method, a.url + path, headers=user, json={})
        assert r.status_code == 403, (path, r.text)


@pytest.mark.parametrize("path", ["/api/v1/peer/mesh/telemetry", "/api/v1/peer/message"])
def test_peers_off_by_default(live_factory, path: str) -> None:  # type: ignore[no-untyped-def]
    live = live_factory()
    assert live.client.post(path, content=b"{}").status_code == 404
    admin = live.setup_admin()
    r = live.client.get("/api/v1/peers", headers=admin)
    assert r.status_code == 400 and r.json()["code"] == "feature_disabled"


def test_cli_invites_approves_and_lists(nodes: dict[str, Node]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    b, c = nodes["b"], nodes["c"]
    mongars = str(Path(sys.executable).parent / "mongars")

    def cli(*args: str) -> str:
        out = subprocess.run(
            [mongars, "peers", *args], env=b.env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    invite = cli("invite", "--ttl", "120").split()[0]
    assert invite.startswith("mgi1.")
    r = c.client.post("/api/v1/peer/join", json={"invite": invite})
    assert r.status_code == 200, r.text
    assert f"{c.node_id} paired" in cli("approve", c.node_id)
    _wait(lambda: _peer(c, b)["state"] == "paired")
    listing = cli("list")
    assert c.node_id in listing and "paired" in listing
    bad = subprocess.run(
        [mongars, "peers", "approve", "z" * 26], env=b.env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "no such peer" in bad.stdout
