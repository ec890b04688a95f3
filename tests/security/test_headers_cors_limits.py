"""Security headers on API responses, CORS closed unless configured, and per-user rate
limits (429 + Retry-After) on chat, uploads and training."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mongars.app import create_app
from mongars.http_security import API_CSP
from mongars.settings import Settings
from tests.conftest import PASSWORD, Api, LiveApi, make_settings
from tests.fakes import ScriptedLLM
from tests.realtime.wsclient import WS

CHAT = "/api/v1/conversation/chat"
STREAM = "/api/v1/conversation/chat/stream"
COMPLETIONS = "/v1/chat/completions"
SECURE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "content-security-policy": API_CSP,
}
Response = Any  # httpx's, or the TestClient's own httpx2 response


def assert_secure(r: Response, cache: str = "no-store") -> None:
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    for name, value in SECURE.items():
        assert r.headers.get(name) == value, f"{where}: {name}={r.headers.get(name)!r}"
    assert r.headers.get("cache-control") == cache, where


def assert_limited(r: Response, limit: str) -> int:
    """A 429 with an integer Retry-After within the window, the headers, the limit named."""
    assert r.status_code == 429, r.text
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    assert_secure(r)
    body = r.json()
    detail = body["detail"] if "detail" in body else body["error"]["message"]
    assert f"the limit is {limit} per user" in detail and f"try again in {retry} s" in detail
    return retry


def chat_body(message: str = "hi") -> dict[str, Any]:
    return {"message": message}


def csrf(api: Api, path: str) -> str:
    page = api.client.get(path).text
    return page.split('name="csrf-token" content="')[1][:64]


def key_for(api: Api, headers: dict[str, str]) -> dict[str, str]:
    r = api.client.post("/api/v1/keys", json={"name": "script"}, headers=headers)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


# -- headers --------------------------------------------------------------------------


def test_api_json_error_and_metrics_responses_carry_security_headers(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_body_bytes=4096), llm=ScriptedLLM())

    @app.get("/api/v1/test-bug")
    async def bug() -> None:  # an unhandled exception: Starlette's 500 has no headers
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client)
        admin = api.setup_admin()
        big = {**admin, "content-type": "application/json"}
        seen = {
            200: client.get("/api/v1/conversation/history", headers=admin),
            401: client.get("/api/v1/conversation/history"),
            404: client.get("/api/v1/no-such-route", headers=admin),
            413: client.post(CHAT, content=b'{"message": "' + b"x" * 8000, headers=big),
            422: client.post(CHAT, json={}, headers=admin),
            500: client.get("/api/v1/test-bug"),
        }
        for status, r in seen.items():
            assert r.status_code == status, r.text
            assert_secure(r)
        assert seen[401].headers["www-authenticate"] == "Bearer"  # the route's own headers kept
        assert seen[500].json() == {"detail": "internal server error", "code": "internal_error"}
        v1 = client.get("/v1/models")  # OpenAI-compatible error shape, same headers
        assert v1.status_code == 401 and v1.json()["error"]["type"]
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.text.startswith("#")
        for r in (v1, metrics, client.get("/healthz")):
            assert_secure(r)
        page = client.get("/login")  # the console keeps its own CSP
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cross-origin-resource-policy"] == "same-origin"
        docs = client.get("/docs")  # Swagger UI's inline scripts: no CSP, the rest kept
        assert "content-security-policy" not in docs.headers
        assert docs.headers["x-content-type-options"] == "nosniff"


# -- CORS -----------------------------------------------------------------------------

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


def test_cors_is_closed_by_default(api: Api) -> None:
    admin = api.setup_admin()
    for origin in ("https://app.example", "http://127.0.0.1:3000", "null"):
        pre = api.client.options(CHAT, headers={"Origin": origin, **PREFLIGHT})
        assert pre.status_code == 405
        assert "access-control-allow-origin" not in pre.headers
        assert_secure(pre)
        r = api.client.get("/api/v1/conversation/history", headers={**admin, "Origin": origin})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_opens_to_the_configured_origins_only(api_factory: Callable[..., Api]) -> None:
    api = api_factory(cors={"allow_origins": "HTTPS://App.Example:443/"})  # normalised
    admin = api.setup_admin()
    pre = api.client.options(CHAT, headers={"Origin": "https://app.example", **PREFLIGHT})
    assert pre.status_code == 200, pre.text
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in pre.headers  # bearer tokens need none
    assert pre.headers["x-content-type-options"] == "nosniff"
    ok = api.client.post(CHAT, json=chat_body(), headers={**admin, "Origin": "https://app.example"})
    assert (
        ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
    )
    assert "retry-after" in ok.headers["access-control-expose-headers"].lower()
    for origin in ("https://evil.example", "http://app.example", "https://app.example.evil"):
        refused = api.client.options(CHAT, headers={"Origin": origin, **PREFLIGHT})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        r = api.client.get("/api/v1/conversation/history", headers={**admin, "Origin": origin})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_and_rate_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGARS_CORS__ALLOW_ORIGINS", "https://a.example, http://localhost:5173")
    monkeypatch.setenv("MONGARS_RATE_LIMITS__UPLOAD", "10/minute;100/day")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors.allow_origins == ["https://a.example", "http://localhost:5173"]
    assert settings.rate_limits.upload == "10/minute;100/day"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"cors": {"allow_origins": ["*"], "allow_credentials": True}}, "cannot be combined"),
        ({"cors": {"allow_origins": ["https://a.example/app"]}}, "is not an origin"),
        ({"cors": {"allow_origins": ["ftp://a.example"]}}, "is not an origin"),
        ({"rate_limits": {"chat": "30 per fortnight"}}, "is not a rate limit"),
    ]
    for overrides, message in bad:
        with pytest.raises(ValidationError, match=message):
            Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
    legacy = Settings(_env_file=None, realtime={"chat_rate_limit": "5/minute"})  # type: ignore[call-arg]
    assert legacy.rate_limits.chat == "5/minute"  # the old WebSocket-only setting still counts


# -- rate limits ----------------------------------------------------------------------


def test_chat_limit_is_per_user_and_shared_by_rest_sse_and_v1(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(rate_limits={"chat": "2/minute"})
    admin = api.setup_admin()
    alice, bob = api.create_user(admin, "alice"), api.create_user(admin, "bob")
    alice_key = key_for(api, alice)
    completion = {"model": "any", "messages": [{"role": "user", "content": "hi"}]}
    assert api.client.post(CHAT, json=chat_body(), headers=alice).status_code == 200
    assert api.client.post(COMPLETIONS, json=completion, headers=alice_key).status_code == 200
    assert_limited(api.client.post(CHAT, json=chat_body(), headers=alice), "2/minute")
    assert_limited(api.client.post(STREAM, json=chat_body(), headers=alice), "2/minute")
    v1 = api.client.post(COMPLETIONS, json=completion, headers=alice_key)
    assert_limited(v1, "2/minute")
    assert v1.json()["error"]["code"] == "rate_limit_exceeded"  # OpenAI's shape and code
    refused = api.client.post(CHAT, json=chat_body(), headers=alice).json()
    assert refused["code"] == "rate_limited"
    assert api.client.post(CHAT, json=chat_body(), headers=bob).status_code == 200
    stored = api.client.get("/api/v1/conversation/history", headers=alice).json()
    assert len(stored) == 2  # refused messages never reached the model


def test_console_chat_shares_the_budget_and_limits_can_be_disabled(
    api_factory: Callable[..., Api], tmp_path: Path
) -> None:
    api = api_factory(rate_limits={"chat": "1/minute"})
    headers = api.setup_admin()
    login = {"username": "admin", "password": PASSWORD, "csrf_token": csrf(api, "/login")}
    assert api.client.post("/login", data=login, follow_redirects=False).status_code == 303
    form = {"message": "hello", "csrf_token": csrf(api, "/chat")}
    sent = api.client.post("/chat/send", data=form, follow_redirects=False)
    assert sent.status_code == 303
    again = api.client.post("/chat/send", data=form, follow_redirects=False)
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    assert "the limit is 1/minute per user" in again.text  # an error page, console headers
    assert "script-src 'self'" in again.headers["content-security-policy"]
    assert_limited(api.client.post(CHAT, json=chat_body(), headers=headers), "1/minute")

    settings = make_settings(tmp_path / "off", rate_limits={"enabled": False, "chat": "1/minute"})
    with TestClient(create_app(settings, llm=ScriptedLLM())) as client:
        off = Api(client)
        admin = off.setup_admin()
        for _ in range(3):
            assert client.post(CHAT, json=chat_body(), headers=admin).status_code == 200


def test_upload_limit_is_per_user(api_factory: Callable[..., Api], embedder: Any) -> None:
    api = api_factory(
        embedder=embedder, research={"documents": True}, rate_limits={"upload": "2/minute"}
    )
    admin = api.setup_admin()
    alice, bob = api.create_user(admin, "alice"), api.create_user(admin, "bob")

    def upload(who: dict[str, str], n: int) -> Response:
        files = {"file": (f"n{n}.txt", f"Note {n} about tulips.".encode(), "text/plain")}
        return api.client.post("/api/v1/documents", files=files, headers=who)

    assert [upload(alice, n).status_code for n in range(2)] == [201, 201]
    assert_limited(upload(alice, 2), "2/minute")
    assert upload(bob, 3).status_code == 201
    listed = api.client.get("/api/v1/documents", headers=alice).json()["items"]
    assert len(listed) == 2


def test_training_limit_counts_curation_and_run_starts(api_factory: Callable[..., Api]) -> None:
    api = api_factory(rate_limits={"training": "2/minute"})
    admin = api.setup_admin()
    alice = api.create_user(admin, "alice")
    datasets, runs = "/api/v1/training/datasets", "/api/v1/training/runs"
    for _ in range(3):  # refused as non-admin first: it spends no budget
        assert api.client.post(datasets, json={}, headers=alice).status_code == 403
    d = api.client.post(datasets, json={}, headers=admin)
    assert d.status_code == 201, d.text
    run = api.client.post(runs, json={"dataset_id": d.json()["id"]}, headers=admin)
    assert run.status_code == 409  # an empty dataset is not trainable, but it was a request
    assert_limited(api.client.post(datasets, json={}, headers=admin), "2/minute")
    assert_limited(api.client.post(runs, json={"dataset_id": "x"}, headers=admin), "2/minute")


def test_sse_and_websocket_work_through_the_middleware_and_share_the_chat_budget(
    live_factory: Callable[..., LiveApi],
) -> None:
    llm = ScriptedLLM(replies=["one two three four five"], delay=0.1)
    api = live_factory(provider=llm, rate_limits={"chat": "3/minute"})
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    http: httpx.Client = api.client  # type: ignore[assignment]
    arrivals: list[tuple[str, float]] = []
    with http.stream("POST", STREAM, json=chat_body(), headers=admin) as r:  # chat 1
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert_secure(r, cache="no-cache")
        for line in r.iter_lines():
            if line.startswith("event: "):
                arrivals.append((line[7:], time.monotonic()))
    assert [name for name, _ in arrivals] == ["delta"] * 5 + ["done"]
    assert arrivals[-1][1] - arrivals[0][1] > 0.25  # streamed as generated, not buffered

    ticket = http.post("/api/v1/auth/ws/ticket", headers=admin).json()["ticket"]
    ws = WS(api.server.url.replace("http://", "ws://") + f"/ws/chat?t={ticket}")
    try:
        assert ws.receive_json()["type"] == "ws.connected"
        assert ws.receive_json()["type"] == "history.snapshot"
        ws.send_json({"type": "chat.send", "message": "over the socket"})  # chat 2
        while ws.receive_json()["type"] != "chat.completed":
            pass
        assert http.post(CHAT, json=chat_body(), headers=admin).status_code == 200  # chat 3
        ws.send_json({"type": "chat.send", "message": "one too many", "client_id": "c4"})
        error = ws.receive_json()
        while error["type"] != "chat.error":  # chat 3's events reach the socket too
            assert error["type"].startswith("chat."), error
            error = ws.receive_json()
        assert error["code"] == "rate_limited"
        assert error["client_id"] == "c4" and "3/minute" in error["detail"]
    finally:
        ws.close()
    assert_limited(http.post(CHAT, json=chat_body(), headers=admin), "3/minute")
    assert http.post(CHAT, json=chat_body(), headers=bob).status_code == 200
