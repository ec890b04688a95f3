"""A full user session against a live server that records every secret it is given or
sends, and every response it reads (test_secrets_leak.py greps the latter for the former).

A response that hands a secret out (``/token``, a new API key, a WebSocket ticket, an
invite) is the one place that secret may appear: such bodies are not recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mongars.apikeys.service import DISPLAY_PREFIX_CHARS, KEY_PREFIX
from mongars.peers.identity import unb64

ADMIN_PASSWORD = "Adm1n pass/+&=?é long enough"
USER_PASSWORD = "us3r-pass:word%20 with spaces"
NEW_PASSWORD = "n3w#pass;word,{changed}"
RESET_PASSWORD = "r3set!pass@word by the admin"
WRONG_PASSWORD = "Adm1n pass/+&=?é long enougH"  # a typo of the real one
LONG_PASSWORD = "L0ng-" + "x" * 1100  # refused by length: must not be echoed


@dataclass
class Recorder:
    """What the session saw: secrets by name, and the readable responses."""

    base: str
    secrets: dict[str, str] = field(default_factory=dict)
    bodies: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=60)
        self.secrets |= {
            "admin password": ADMIN_PASSWORD,
            "user password": USER_PASSWORD,
            "changed password": NEW_PASSWORD,
            "reset password": RESET_PASSWORD,
            "wrong password": WRONG_PASSWORD,
            "over-long password": LONG_PASSWORD,
        }

    def call(
        self, method: str, path: str, status: int, *, issues: bool = False, **kw: Any
    ) -> httpx.Response:
        r = self.http.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text[:300]}"
        if not issues:
            self.bodies.append((f"{method} {path} -> {r.status_code}", r.text))
        return r

    def login(self, username: str, password: str, name: str) -> dict[str, str]:
        r = self.call(
            "POST", "/token", 200, issues=True, data={"username": username, "password": password}
        )
        token = r.json()["access_token"]
        self.secrets[f"{name} access token"] = token
        self.secrets[f"{name} access token signature"] = token.rsplit(".", 1)[1]
        return {"Authorization": f"Bearer {token}"}


def run_session(rec: Recorder, setup_token: str) -> None:
    """Accounts, wrong logins, API keys on /v1, WebSocket, REST and SSE chats, bad
    tokens, invalid bodies, console login, peer invites and a node key rotation."""
    rec.secrets["setup token"] = setup_token
    rec.call(
        "POST",
        "/api/v1/setup",
        201,
        json={"token": setup_token, "username": "admin", "password": ADMIN_PASSWORD},
    )
    admin = rec.login("admin", ADMIN_PASSWORD, "admin")
    rec.call("POST", "/token", 401, data={"username": "admin", "password": WRONG_PASSWORD})
    rec.call("POST", "/token", 401, data={"username": "nobody", "password": WRONG_PASSWORD})
    rec.call("POST", "/token", 422, data={"username": "admin", "password": LONG_PASSWORD})
    rec.call(
        "POST",
        "/api/v1/user/register",
        200,
        json={"username": "alice", "password": USER_PASSWORD},
        headers=admin,
    )
    rec.call(
        "POST",
        "/api/v1/user/register",
        422,
        json={"username": "bob", "password": LONG_PASSWORD},
        headers=admin,
    )
    alice = rec.login("alice", USER_PASSWORD, "user")
    rec.call(
        "POST",
        "/api/v1/user/change-password",
        200,
        json={"old_password": USER_PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice,
    )
    rec.call("GET", "/api/v1/user/me", 401, headers=alice)  # the change revoked it
    alice = rec.login("alice", NEW_PASSWORD, "changed")
    _chats(rec, alice)
    _api_key(rec, alice)
    _websocket(rec, alice)
    _bad_requests(rec, alice)
    rec.call(
        "POST",
        "/api/v1/admin/users/alice/password",
        200,
        json={"password": RESET_PASSWORD},
        headers=admin,
    )
    alice = rec.login("alice", RESET_PASSWORD, "reset")
    rec.call("POST", "/api/v1/auth/logout", 200, headers=alice)
    rec.call("GET", "/api/v1/user/me", 401, headers=alice)  # a revoked token
    _console(rec)
    _peers(rec, admin)


def _chats(rec: Recorder, auth: dict[str, str]) -> None:
    rec.call("POST", "/api/v1/conversation/chat", 200, json={"message": "Hello!"}, headers=auth)
    with rec.http.stream(
        "POST", "/api/v1/conversation/chat/stream", json={"message": "Stream it"}, headers=auth
    ) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert "event: done" in text, text
    rec.bodies.append(("SSE chat", text))


def _api_key(rec: Recorder, auth: dict[str, str]) -> None:
    r = rec.call("POST", "/api/v1/keys", 201, issues=True, json={"name": "editor"}, headers=auth)
    key = r.json()["key"]
    assert key.startswith(KEY_PREFIX)
    rec.secrets["API key"] = key
    rec.secrets["API key secret part"] = key[len(KEY_PREFIX) :]
    rec.secrets["API key undisplayed part"] = key[DISPLAY_PREFIX_CHARS:]
    bearer = {"Authorization": f"Bearer {key}"}
    rec.call("GET", "/v1/models", 200, headers=bearer)
    body = {"model": "monGARS", "messages": [{"role": "user", "content": "Hi via key"}]}
    rec.call("POST", "/v1/chat/completions", 200, json=body, headers=bearer)
    rec.call("GET", "/api/v1/keys", 200, headers=auth)
    wrong = {"Authorization": f"Bearer {key[:-4]}abcd"}
    rec.secrets["wrong API key"] = wrong["Authorization"][7:]
    rec.call("GET", "/v1/models", 401, headers=wrong)


def _websocket(rec: Recorder, auth: dict[str, str]) -> None:
    """A ticket, a socket (with a browser's session cookie), a chat, then the same
    ticket again (refused: single use)."""
    r = rec.call("POST", "/api/v1/auth/ws/ticket", 200, issues=True, headers=auth)
    ticket = r.json()["ticket"]
    rec.secrets["WebSocket ticket"] = ticket
    url = rec.base.replace("http://", "ws://", 1) + f"/ws/chat?t={ticket}"
    cookie = {"Cookie": f"mongars_session={auth['Authorization'][7:]}"}
    with connect(url, additional_headers=cookie, proxy=None, ping_interval=None) as ws:
        rec.bodies.append(("WebSocket snapshot", str(ws.recv(timeout=30))))
        ws.send(json.dumps({"type": "chat.send", "message": "Hi over the socket"}))
        while True:
            message = str(ws.recv(timeout=30))
            rec.bodies.append(("WebSocket message", message))
            if json.loads(message)["type"] in ("chat.completed", "chat.error"):
                break
    with connect(url, proxy=None, ping_interval=None) as ws:
        try:
            ws.recv(timeout=30)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4401
            rec.bodies.append(("WebSocket refusal", exc.rcvd.reason))
        else:
            raise AssertionError("a used ticket opened a socket")


def _bad_requests(rec: Recorder, auth: dict[str, str]) -> None:
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWZvcmdlZC1ieS10aGUtdGVzdA"
    rec.secrets["forged token"] = forged
    rec.call("GET", "/api/v1/user/me", 401, headers={"Authorization": f"Bearer {forged}"})
    rec.call("POST", "/api/v1/conversation/chat", 422, json={}, headers=auth)
    # a client that puts its token in the URL: the access log prints query strings
    rec.call("GET", f"/healthz?access_token={auth['Authorization'][7:]}", 200)
    rec.call(
        "POST",
        "/api/v1/user/change-password",
        422,
        json={"old_password": NEW_PASSWORD, "new_password": LONG_PASSWORD},
        headers=auth,
    )
    rec.call(
        "POST",
        "/api/v1/user/change-password",
        403,
        json={"old_password": WRONG_PASSWORD, "new_password": "another-pass-1"},
        headers=auth,
    )


def _console(rec: Recorder) -> None:
    """The web console's login form: its session cookie is a token too."""
    page = rec.call("GET", "/login", 200)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    form = {"csrf_token": match.group(1), "username": "admin", "password": WRONG_PASSWORD}
    rec.call("POST", "/login", 401, data=form)
    form["password"] = ADMIN_PASSWORD
    r = rec.call("POST", "/login", 303, issues=True, data=form)
    session = r.cookies.get("mongars_session") or rec.http.cookies.get("mongars_session")
    assert session, r.headers
    rec.secrets["console session token"] = session
    rec.call("GET", "/chat", 200)
    rec.http.cookies.clear()


def _peers(rec: Recorder, admin: dict[str, str]) -> None:
    """An invite (its single-use secret inside), a join with a tampered copy of it, a
    key rotation."""
    r = rec.call("POST", "/api/v1/peer/invites", 201, issues=True, json={}, headers=admin)
    invite = r.json()["invite"]
    rec.secrets["peer invite"] = invite
    encoded = invite.partition(".")[2]
    body = json.loads(unb64(encoded))
    rec.secrets["peer invite secret"] = body["secret"]
    rec.call("POST", "/api/v1/peer/join", 422, json={"invite": invite[:-6]}, headers=admin)
    rec.call("POST", "/api/v1/peer/keys/rotate", 200, headers=admin)
    rec.call("GET", "/api/v1/peer/node", 200, headers=admin)
