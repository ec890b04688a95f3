"""WebSocket chat: tickets, origins, the protocol, cancel, regenerate, resume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from mongars.realtime.tickets import issue_ticket
from tests.conftest import LiveApi
from tests.fakes import ScriptedLLM
from tests.realtime.wsclient import WS, Closed

LONG = " ".join(f"w{i}" for i in range(40))


@pytest.fixture
def api(live_factory: Callable[..., LiveApi]) -> LiveApi:
    return live_factory()


def ticket(api: LiveApi, headers: dict[str, str]) -> str:
    r = api.client.post("/api/v1/auth/ws/ticket", headers=headers)
    assert r.status_code == 200 and 0 < r.json()["ttl"] <= 60
    return str(r.json()["ticket"])


def ws_url(api: LiveApi, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.server.url.replace("http://", "ws://") + f"/ws/chat?{query}"


def connect(api: LiveApi, headers: dict[str, str], **params: str) -> WS:
    ws = WS(ws_url(api, t=ticket(api, headers), **params))
    assert ws.receive_json()["type"] == "ws.connected"
    snapshot = ws.receive_json()
    assert snapshot["type"] == "history.snapshot"
    ws.snapshot = snapshot
    return ws


def refused(url: str, origin: str | None = None) -> int | None:
    ws = WS(url, origin=origin)
    with pytest.raises(Closed) as err:
        for _ in range(5):
            ws.receive_json()
    return err.value.code


def until(
    ws: Any, predicate: Callable[[dict[str, Any]], bool], limit: int = 500
) -> list[dict[str, Any]]:
    seen = []
    for _ in range(limit):
        message = ws.receive_json()
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"not seen in {limit} messages: {seen[-5:]}")


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind


def test_send_streams_deltas_and_stores_once(api: LiveApi) -> None:
    headers = api.setup_admin()
    ws = connect(api, headers)
    ws.send_json({"type": "chat.send", "message": "hi", "client_id": "c1"})
    seen = until(ws, is_type("chat.completed"))
    ack = next(m for m in seen if m["type"] == "ack")
    assert ack == {**ack, "for": "chat.send", "ref": "c1", "ok": True}
    gen = ack["generation_id"]
    started = next(m for m in seen if m["type"] == "chat.started")
    assert started["client_id"] == "c1" and started["index"] == 0
    deltas = [m for m in seen if m["type"] == "chat.delta"]
    assert [d["index"] for d in deltas] == list(range(1, len(deltas) + 1))
    done = seen[-1]
    assert done["generation_id"] == gen
    assert done["text"] == "".join(d["text"] for d in deltas) == "Hello there. How can I help?"
    assert {"usage", "latency", "confidence", "speech_turn", "turn_id"} <= set(done)
    assert "user_id" not in done
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert [h["query"] for h in history] == ["hi"]
    ws.close()


def test_ticket_is_single_use_signed_and_short_lived(api: LiveApi) -> None:
    headers = api.setup_admin()
    t = ticket(api, headers)
    ws = WS(ws_url(api, t=t))
    assert ws.receive_json()["type"] == "ws.connected"
    ws.close()
    for bad in [
        t,
        t[:-3] + "AAA",
        "garbage",
        "",
        issue_ticket(api.runtime.secret, 1, ttl_s=-5),
        issue_ticket("another-secret-entirely-000000000000", 1, ttl_s=60),
    ]:
        assert refused(ws_url(api, t=bad)) == 4401, bad


def test_origin_allow_list(live_factory) -> None:  # type: ignore[no-untyped-def]
    api = live_factory(realtime={"allowed_origins": ["https://chat.example.org"]})
    headers = api.setup_admin()
    own = api.server.url
    for origin, ok in [
        (own, True),
        ("https://CHAT.example.org:443", True),
        ("https://evil.example.org", False),
        ("null", False),
    ]:
        url = ws_url(api, t=ticket(api, headers))
        if ok:
            ws = WS(url, origin=origin)
            assert ws.receive_json()["type"] == "ws.connected"
            ws.close()
        else:
            assert refused(url, origin=origin) == 4403, origin


def test_two_tabs_both_see_the_stream(api: LiveApi) -> None:
    headers = api.setup_admin()
    tab1, tab2 = connect(api, headers), connect(api, headers)
    tab1.send_json({"type": "chat.send", "message": "hello", "client_id": "x"})
    done1 = until(tab1, is_type("chat.completed"))[-1]
    done2 = until(tab2, is_type("chat.completed"))[-1]
    assert done1["generation_id"] == done2["generation_id"] and done1["text"] == done2["text"]
    tab1.close()
    tab2.close()


def test_other_users_never_receive_my_events(api: LiveApi) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    mine, theirs = connect(api, admin), connect(api, bob)
    mine.send_json({"type": "chat.send", "message": "private"})
    until(mine, is_type("chat.completed"))
    theirs.send_json({"type": "pong", "client_id": "p"})
    assert theirs.receive_json() == {"type": "ack", "for": "pong", "ref": "p", "ok": True}
    mine.close()
    theirs.close()


def test_bad_frames_get_errors_and_the_socket_keeps_serving(api: LiveApi) -> None:
    headers = api.setup_admin()
    ws = connect(api, headers)
    ws.send_text("{not json")
    assert ws.receive_json()["code"] == "invalid_json"
    ws.send_text("[1, 2]")
    assert ws.receive_json()["code"] == "invalid_message"
    ws.send_json({"type": "chat.fly", "client_id": "u"})
    ack = ws.receive_json()
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_type" and ack["ref"] == "u"
    ws.send_json({"type": "chat.send", "message": "   ", "client_id": "e"})
    ack = ws.receive_json()
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_input"
    ws.send_json({"type": "chat.send", "message": "hi", "thread_id": "../x"})
    assert ws.receive_json()["error"]["code"] == "invalid_input"
    ws.send_json({"type": "chat.cancel", "generation_id": "nope"})
    assert ws.receive_json()["error"]["code"] == "not_found"
    ws.send_json({"type": "chat.send", "message": "still works"})
    until(ws, is_type("chat.completed"))
    ws.close()


def test_oversized_frame_closes_1009(live_factory) -> None:  # type: ignore[no-untyped-def]
    api = live_factory(realtime={"max_frame_bytes": 2048})
    ws = connect(api, api.setup_admin())
    ws.send_json({"type": "chat.send", "message": "x" * 5000})
    with pytest.raises(Closed) as err:
        ws.receive_json()
    assert err.value.code == 1009


def test_rate_limit_answers_with_an_error_event(live_factory) -> None:  # type: ignore[no-untyped-def]
    api = live_factory(realtime={"chat_rate_limit": "2/minute"})
    ws = connect(api, api.setup_admin())
    for i in range(2):
        ws.send_json({"type": "chat.send", "message": f"m{i}"})
        until(ws, is_type("chat.completed"))
    ws.send_json({"type": "chat.send", "message": "m3", "client_id": "third"})
    error = ws.receive_json()
    assert error == {**error, "type": "chat.error", "code": "rate_limited", "client_id": "third"}
    assert ws.receive_json()["ok"] is False
    ws.close()


def test_heartbeat_timeout_closes_4408(live_factory) -> None:  # type: ignore[no-untyped-def]
    api = live_factory(realtime={"heartbeat_s": 0.05, "heartbeat_timeout_s": 0.2})
    ws = connect(api, api.setup_admin())
    with pytest.raises(Closed) as err:
        for _ in range(100):
            assert ws.receive_json()["type"] == "ping"
    assert err.value.code == 4408


def test_cancel_stops_generation_and_stores_partial(live_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies=[LONG], delay=0.02)
    api = live_factory(provider=llm)
    headers = api.setup_admin()
    ws = connect(api, headers)
    ws.send_json({"type": "chat.send", "message": "go", "client_id": "c"})
    seen = until(ws, lambda m: m["type"] == "chat.delta" and m["index"] >= 3)
    gen = next(m for m in seen if m["type"] == "ack")["generation_id"]
    ws.send_json({"type": "chat.cancel", "generation_id": gen})
    seen = until(ws, is_type("chat.cancelled"))
    partial = seen[-1]["text"]
    assert 0 < len(partial.split()) < 40
    assert llm.closed_early
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert len(history) == 1 and history[0]["response"] == partial
    ws.close()


def test_regenerate_replaces_the_last_answer(live_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies=["first answer", "second answer"])
    api = live_factory(provider=llm)
    headers = api.setup_admin()
    ws = connect(api, headers)
    ws.send_json({"type": "chat.send", "message": "q1", "thread_id": "t1"})
    until(ws, is_type("chat.completed"))
    ws.send_json({"type": "chat.regenerate", "thread_id": "t1", "client_id": "r"})
    done = until(ws, is_type("chat.completed"))[-1]
    assert done["text"] == "second answer"
    assert [m.content for m in llm.calls[-1] if m.role == "user"] == ["q1"]
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert [(h["query"], h["response"]) for h in history] == [("q1", "second answer")]
    ws.send_json({"type": "chat.regenerate", "thread_id": "nope"})
    assert ws.receive_json()["error"]["code"] == "not_found"
    ws.close()


def test_reconnect_and_resume_gets_the_rest(live_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies=[LONG], delay=0.01)
    api = live_factory(provider=llm)
    headers = api.setup_admin()
    ws = connect(api, headers)
    ws.send_json({"type": "chat.send", "message": "go", "thread_id": "lid"})
    seen = until(ws, lambda m: m["type"] == "chat.delta" and m["index"] == 5)
    gen = next(m for m in seen if m["type"] == "ack")["generation_id"]
    # applied once per index, in index order (docs/websocket.md): the new socket
    # watches the thread, so a live delta may arrive before the replay of earlier ones
    got = {m["index"]: m["text"] for m in seen if m["type"] == "chat.delta"}
    ws.close()  # the lid closes
    time.sleep(0.1)
    again = connect(api, headers, thread_id="lid")
    running = [r["generation_id"] for r in again.snapshot["running"]]
    again.send_json(
        {"type": "chat.resume", "generation_id": gen, "last_index": 5, "client_id": "r"}
    )
    rest = until(again, is_type("chat.completed"))
    for m in rest:
        if m["type"] == "chat.delta" and m["generation_id"] == gen:
            assert got.setdefault(m["index"], m["text"]) == m["text"]  # a repeat is equal
    assert "".join(got[i] for i in sorted(got)) == rest[-1]["text"] == LONG
    assert gen in running or rest[-1]["index"] > 5
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert len(history) == 1  # stored exactly once
    again.close()


def test_snapshot_shows_the_thread(api: LiveApi) -> None:
    headers = api.setup_admin()
    api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "remember me", "session_id": "s"},
        headers=headers,
    )
    ws = connect(api, headers)
    assert ws.snapshot["thread_id"] == "s"
    assert [m["query"] for m in ws.snapshot["messages"]] == ["remember me"]
    ws.close()


def test_send_queue_overflow_closes_1013() -> None:
    import asyncio

    from mongars.realtime.connection import ChatConnection, Close

    conn = ChatConnection.__new__(ChatConnection)
    conn.queue = asyncio.Queue(2)
    conn.send({"a": 1})
    conn.send({"a": 2})
    with pytest.raises(Close) as err:
        conn.send({"a": 3})
    assert err.value.code == 1013


def test_sse_resume_with_last_event_id(live_factory) -> None:  # type: ignore[no-untyped-def]
    api = live_factory(provider=ScriptedLLM(replies=["a b c d e f"]))
    headers = api.setup_admin()
    with api.client.stream(
        "POST", "/api/v1/conversation/chat/stream", json={"message": "x"}, headers=headers
    ) as r:
        frames = r.read().decode().strip().split("\n\n")
    ids = [f.split("\n")[0].removeprefix("id: ") for f in frames]
    gen = ids[0].split(":")[0]
    resume = api.client.get(
        f"/api/v1/conversation/generations/{gen}/events",
        headers={**headers, "Last-Event-ID": ids[2]},
    )
    assert resume.status_code == 200
    resumed = resume.text.strip().split("\n\n")
    assert resumed == frames[3:]
    other = api.create_user(headers, "eve")
    assert (
        api.client.get(f"/api/v1/conversation/generations/{gen}/events", headers=other).status_code
        == 404
    )
    bad = api.client.get(
        f"/api/v1/conversation/generations/{gen}/events",
        headers={**headers, "Last-Event-ID": "zzz"},
    )
    assert bad.status_code == 422
    assert json.loads(frames[-1].split("data: ", 1)[1])["response"] == "a b c d e f"


def test_deleting_a_thread_mid_answer_does_not_revive_it(live_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies=["first", LONG], delay=0.01)
    api = live_factory(provider=llm)
    headers = api.setup_admin()
    api.client.post(
        "/api/v1/conversation/chat", json={"message": "a", "session_id": "gone"}, headers=headers
    )
    ws = connect(api, headers)
    ws.send_json({"type": "chat.send", "message": "b", "thread_id": "gone"})
    until(ws, lambda m: m["type"] == "chat.delta" and m["index"] >= 2)
    assert api.client.delete("/api/v1/threads/gone", headers=headers).status_code == 204
    end = until(ws, lambda m: m["type"] in ("chat.completed", "chat.error"))[-1]
    assert end["type"] == "chat.error" and end["code"] == "not_found"
    assert api.client.get("/api/v1/threads/gone", headers=headers).status_code == 404
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []
    ws.close()
