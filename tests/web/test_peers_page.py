"""Console: the admins' Peers page (this node, pairing requests, every peer's health,
last seen time, latency and reputation; invite, join, approve, reject, revoke, restore).
Two real nodes (uvicorn on 127.0.0.1, each with its own database and keys) pair through
the page; other users are refused; a server with peers off says how to turn them on."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mongars.app import create_app
from mongars.peers.identity import b64, unb64
from tests.conftest import Api, LiveApi, LiveServer, free_port, make_settings
from tests.fakes import ScriptedLLM
from tests.web.test_console_http import csrf, login

INVITE_RE = re.compile(r'<textarea id="invite-text"[^>]*>(mgi1\.[^<]+)</textarea>')
PEERS_ON = {"enabled": True, "allow_http": True, "telemetry_interval_s": 0.5}


def post(client: Any, path: str, token: str, **data: str) -> tuple[int, str]:
    """A console form's POST; the page it leads to (the flash), or the page answered."""
    r = client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
    if r.status_code == 303:
        assert r.headers["location"] == "/admin/peers"
        return 303, client.get("/admin/peers").text
    return r.status_code, r.text


def row(page: str, node_id: str) -> str:
    """The peers table's row of one node (its text, tags kept)."""
    match = re.search(rf'<tr id="peer-{node_id}">(.*?)</tr>', page, re.S)
    assert match, page
    return match.group(1)


def cell(page: str, node_id: str, name: str) -> str:
    match = re.search(rf'<td class="{name}">(.*?)</td>', row(page, node_id), re.S)
    assert match, row(page, node_id)
    return html.unescape(match.group(1)).strip()


def create_invite(client: Any, token: str, **data: str) -> str:
    status, page = post(client, "/admin/peers/invite", token, **data)
    assert status == 200, page
    match = INVITE_RE.search(page)
    assert match, page
    return html.unescape(match.group(1))


class _Late:
    """An ASGI app set after its server chose a port (the app's public URL needs it)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Callable[[str], LiveApi]]:
    """A real server with peers on whose MONGARS_PUBLIC_URL is its own address."""
    started: list[LiveApi] = []

    def make(name: str) -> LiveApi:
        late = _Late()
        server = LiveServer(late)
        settings = make_settings(tmp_path / name, peers=PEERS_ON, public_url=server.url)
        late.app = create_app(settings, llm=ScriptedLLM())
        live = LiveApi(server.__enter__(), late.app)
        started.append(live)
        live.setup_admin()
        assert login(live.client).status_code == 303
        return live

    yield make
    for live in started:
        live.client.close()  # type: ignore[attr-defined]
        live.server.__exit__(None, None, None)


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def test_peers_page_is_for_admins_only(api_factory: Callable[..., Api]) -> None:
    api = api_factory(peers=PEERS_ON)
    r = api.client.get("/admin/peers", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/peers"
    admin = api.setup_admin()
    api.create_user(admin, "alice")
    login(api.client, "alice")
    r = api.client.get("/admin/peers", follow_redirects=False)
    assert r.status_code == 403 and "admin rights required" in r.text
    assert 'href="/admin/peers"' not in api.client.get("/chat").text
    token = csrf(api.client, "/chat")
    assert post(api.client, "/admin/peers/invite", token)[0] == 403
    assert post(api.client, "/admin/peers/join", token, invite="mgi1.xxxxxxxx")[0] == 403
    # Nothing was created on alice's behalf.
    login(api.client)
    assert "No peers yet" in api.client.get("/admin/peers").text
    assert "peer.invite" not in api.client.get("/admin/audit").text


def test_peers_page_when_peers_are_off(api: Api) -> None:
    api.setup_admin()
    login(api.client)
    page = api.client.get("/admin/peers")
    assert page.status_code == 200
    assert "Peers are off on this server" in page.text
    assert "MONGARS_PEERS__ENABLED=true" in page.text
    assert 'href="/admin/peers" aria-current="page"' in page.text
    assert 'action="/admin/peers/invite"' not in page.text
    token = csrf(api.client, "/admin/peers")
    status, text = post(api.client, "/admin/peers/invite", token)
    assert status == 400 and "MONGARS_PEERS__ENABLED=true" in text


def test_invite_form_and_refused_joins(api_factory: Callable[..., Api]) -> None:
    api = api_factory(peers=PEERS_ON, public_url="http://node-a.example:8000")
    api.setup_admin()
    login(api.client)
    page = api.client.get("/admin/peers")
    node = api.runtime.peers.node()
    assert page.status_code == 200, page.text
    assert f'<code id="node-id">{node.node_id}</code>' in page.text
    assert "http://node-a.example:8000" in page.text and node.kid in page.text
    assert 'href="/admin/peers" aria-current="page"' in page.text
    assert "No node is waiting for a decision" in page.text and "No peers yet" in page.text
    token = csrf(api.client, "/admin/peers")

    invite = create_invite(api.client, token, same_owner="true", ttl_min="5")
    body = json.loads(unb64(invite[len("mgi1.") :]))
    assert body["node_id"] == node.node_id and body["url"] == "http://node-a.example:8000"
    assert 290 <= body["expires_at"] - time.time() <= 300
    assert invite not in api.client.get("/admin/peers").text  # shown once
    assert INVITE_RE.search(api.client.get("/admin/peers").text) is None
    for ttl in ("0", "abc", "100000", "nan"):
        code, text = post(api.client, "/admin/peers/invite", token, ttl_min=ttl)
        assert code == 422 and 'role="alert"' in text and "minutes" in text, (ttl, text[-2000:])
        assert INVITE_RE.search(text) is None

    # Bad invites pasted into the join form: the page with the reason, never a 500.
    for bad, status, reason in [
        ("hello there", 422, "not a monGARS invite"),
        ("mgi1." + "A" * 40, 422, "the invite is damaged"),
        (invite, 422, "this invite is this node&#39;s own"),
        ("", 422, "not a monGARS invite"),
    ]:
        code, text = post(api.client, "/admin/peers/join", token, invite=bad)
        assert (code, reason in text) == (status, True), (bad[:20], code, text[-2000:])
        assert 'role="alert"' in text and 'action="/admin/peers/join"' in text
    # Another node's invite whose node does not answer: 502, with the invite kept.
    dead = dict(body, node_id="b" * 26, url=f"http://127.0.0.1:{free_port()}")
    forged = "mgi1." + b64(json.dumps(dead).encode())
    code, text = post(api.client, "/admin/peers/join", token, invite=forged)
    assert code == 502 and "the inviting node refused or did not answer" in text
    assert forged in text
    assert "No peers yet" in text
    # Acting on a node that is not known, and without the CSRF token.
    code, text = post(api.client, f"/admin/peers/{'c' * 26}/revoke", token)
    assert code == 404 and "no such peer" in text
    code, text = post(api.client, f"/admin/peers/{'c' * 26}/approve", token, note="hi")
    assert code == 404 and "no such peer" in text
    r = api.client.post("/admin/peers/invite", follow_redirects=False)
    assert r.status_code == 403


def test_pairing_through_the_page(node_factory: Callable[[str], LiveApi]) -> None:
    a, b = node_factory("a"), node_factory("b")
    a_id, b_id = a.runtime.peers.node().node_id, b.runtime.peers.node().node_id
    a_token, b_token = csrf(a.client, "/admin/peers"), csrf(b.client, "/admin/peers")

    invite = create_invite(a.client, a_token)
    status, page = post(b.client, "/admin/peers/join", b_token, invite=invite)
    assert status == 303 and f"Asked node {a_id} to pair: pending" in page
    assert cell(page, a_id, "state").startswith("pending")
    # A sees B's request, with the node's URL, and approves it through the page.
    page = a.client.get("/admin/peers").text
    assert f'<tr id="request-{b_id}">' in page and b.server.url in page
    assert f'<tr id="peer-{b_id}">' not in page
    status, page = post(a.client, f"/admin/peers/{b_id}/approve", a_token, note="our lab")
    assert status == 303 and f"Node {b_id} approved: paired." in page, page
    assert f'<tr id="request-{b_id}">' not in page
    assert cell(page, b_id, "state").startswith("paired") and "our lab" in row(page, b_id)
    # Approving twice: the mesh's refusal on the page.
    status, page = post(a.client, f"/admin/peers/{b_id}/approve", a_token)
    assert status == 409 and "the peer is paired, not waiting for a decision" in page

    # Both sides paired; telemetry flows: healthy, latency, load and reputation shown.
    def healthy(node: LiveApi, other: str) -> bool:
        page = node.client.get("/admin/peers").text
        return cell(page, other, "healthy") == "yes" and cell(page, other, "latency") != "–"

    _wait(lambda: healthy(a, b_id) and healthy(b, a_id))
    for node, other in ((a, b_id), (b, a_id)):
        page = node.client.get("/admin/peers").text
        assert cell(page, other, "state").startswith("paired")
        assert float(cell(page, other, "reputation")) > 0.9
        assert re.fullmatch(r"[0-9.]+ ms", cell(page, other, "latency"))
        assert re.fullmatch(r"[0-9.]+", cell(page, other, "load"))
        assert "s ago)" in row(page, other)

    # A revokes through the page; B is told, and A refuses B from then on.
    status, page = post(a.client, f"/admin/peers/{b_id}/revoke", a_token)
    assert status == 303 and f"Node {b_id} revoked" in page
    assert cell(page, b_id, "state").startswith("revoked")
    assert cell(page, b_id, "healthy") == "no"
    assert f'action="/admin/peers/{b_id}/revoke"' not in page
    _wait(lambda: cell(b.client.get("/admin/peers").text, a_id, "state").startswith("revoked"))
    # Restoring is for quarantined peers only.
    status, page = post(a.client, f"/admin/peers/{b_id}/restore", a_token, note="ok")
    assert status == 409 and "the peer is revoked, not quarantined" in page
    audit = a.client.get("/admin/audit").text
    assert "peer.approve" in audit and "peer.revoke" in audit


def test_reject_and_restore_a_quarantined_peer(node_factory: Callable[[str], LiveApi]) -> None:
    a, b = node_factory("a"), node_factory("b")
    a_id, b_id = a.runtime.peers.node().node_id, b.runtime.peers.node().node_id
    a_token, b_token = csrf(a.client, "/admin/peers"), csrf(b.client, "/admin/peers")

    # A first request rejected: B is told.
    status, _ = post(
        b.client, "/admin/peers/join", b_token, invite=create_invite(a.client, a_token)
    )
    assert status == 303
    status, page = post(a.client, f"/admin/peers/{b_id}/reject", a_token, note="not yet")
    assert status == 303 and f"Node {b_id} rejected." in page
    assert cell(page, b_id, "state").startswith("rejected")
    _wait(lambda: cell(b.client.get("/admin/peers").text, a_id, "state").startswith("rejected"))

    # A new invite, approved this time; then B fails a check and A quarantines it.
    invite = create_invite(a.client, a_token, same_owner="true")
    assert post(b.client, "/admin/peers/join", b_token, invite=invite)[0] == 303
    assert post(a.client, f"/admin/peers/{b_id}/approve", a_token)[0] == 303
    _on_server_loop(a, a.runtime.peers.quarantine(b_id, "spot check: answers differ"))
    page = a.client.get("/admin/peers").text
    assert cell(page, b_id, "state").startswith("quarantined")
    assert "reason: “spot check: answers differ”" in html.unescape(row(page, b_id))
    assert f'action="/admin/peers/{b_id}/restore"' in page
    assert "<td>yes</td>" in row(page, b_id)  # same owner
    status, page = post(a.client, f"/admin/peers/{b_id}/restore", a_token, note="checked by hand")
    assert status == 303 and f"Node {b_id} restored: paired again." in page
    assert cell(page, b_id, "state").startswith("paired")
    assert "checked by hand" in row(page, b_id)


def _on_server_loop(node: LiveApi, coro: Any) -> None:
    """Run a coroutine of the node's mesh on the server's own event loop (its thread),
    where its database engine lives: the loop its telemetry task runs on."""
    loop = node.runtime.peers._task.get_loop()
    asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)


@pytest.mark.browser
def test_peers_page_in_the_browser(node_factory: Callable[[str], LiveApi], page: Any) -> None:
    """The admin's view in chromium: labelled controls, no CSP violation, the invite
    shown to copy, approval, the peer's figures, revoke behind a confirmation."""
    from tests.web.conftest import ui_login
    from tests.web.test_console_pages import UNLABELLED

    a, b = node_factory("a"), node_factory("b")
    b_id = b.runtime.peers.node().node_id
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    base = a.server.url
    ui_login(page, base, "admin")
    page.get_by_role("link", name="Peers").click()
    page.wait_for_url(f"{base}/admin/peers")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_label("Valid for (minutes)").fill("10")
    page.get_by_role("button", name="Create invite").click()
    invite = page.get_by_label("Invite", exact=True).input_value()
    assert invite.startswith("mgi1.")
    assert (
        post(b.client, "/admin/peers/join", csrf(b.client, "/admin/peers"), invite=invite)[0] == 303
    )

    page.goto(f"{base}/admin/peers")
    request = page.locator(f"#request-{b_id}")
    request.get_by_label("Note").fill("lab node")
    request.get_by_role("button", name=f"Approve {b_id}").click()
    page.wait_for_url(f"{base}/admin/peers")
    assert f"Node {b_id} approved: paired." in page.locator(".flash").inner_text()
    row = page.locator(f"#peer-{b_id}")
    # Healthy means recently heard from (B's own telemetry can do that); latency needs
    # one of A's rounds to B, so wait for both.
    for _ in range(50):
        if row.locator("td.healthy").inner_text() == "yes" and row.locator(
            "td.latency"
        ).inner_text().endswith(" ms"):
            break
        page.wait_for_timeout(200)
        page.reload()
    assert row.locator("td.healthy").inner_text() == "yes"
    assert row.locator("td.latency").inner_text().endswith(" ms")
    assert float(row.locator("td.reputation").inner_text()) > 0.9
    assert page.evaluate(UNLABELLED) == []

    # Revoke asks first: cancelled, nothing changes; confirmed, the peer is revoked.
    page.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name=f"Revoke {b_id}").click()
    page.wait_for_timeout(300)
    assert row.locator("td.state").inner_text().startswith("paired")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=f"Revoke {b_id}").click()
    page.wait_for_selector(f".flash:has-text('Node {b_id} revoked')")
    assert row.locator("td.state").inner_text().startswith("revoked")
    assert violations == []
