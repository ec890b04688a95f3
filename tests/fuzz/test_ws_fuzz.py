"""Issue 21: the WebSocket under bad input (docs/websocket.md). Alice's socket gets
generated frames (malformed and non-object JSON, NaN, deep nesting, binary, unknown
types, missing and wrong-typed fields, huge ids), floods and oversized frames; Bob's
socket stays open beside it. Every frame gets its documented answer (an ``error``
event or an ``ack``), the socket keeps serving, it closes only with the documented
codes (1007, 1009, 4401), and Bob receives nothing of it. Fixed seed (derandomized)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from mongars.app import create_app
from tests.conftest import LiveApi, LiveServer, make_settings
from tests.fakes import ScriptedLLM
from tests.realtime.wsclient import WS, Closed

EXAMPLES = int(os.environ.get("MONGARS_FUZZ_WS_EXAMPLES", "25"))
MAX_FRAME = 8192
CHAT_LIMIT = 5  # chat.send per minute and user
TYPES = ["chat.send", "chat.regenerate", "chat.cancel", "chat.resume", "pong"]
# What the server may send (docs/websocket.md); the generation events follow a chat.send.
SERVER_TYPES = {"ack", "error", "chat.started", "chat.delta", "chat.completed", "chat.error"}
SERVER_TYPES |= {"chat.cancelled", "ping"}
ERROR_CODES = {"invalid_json", "invalid_message"}
# Fixed seed; no shrinking (over a socket it can take minutes): the failing batch is shown.
SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "phases": [Phase.explicit, Phase.generate],
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


class Chat:
    """The server, Alice (fuzzed) and Bob (who must see nothing of it)."""

    def __init__(self, api: LiveApi) -> None:
        self.api = api
        admin = api.setup_admin()
        self.alice = api.create_user(admin, "alice")
        self.bob_headers = api.create_user(admin, "bob")
        self.bob = self.connect(self.bob_headers)

    def url(self, ticket: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"t": ticket, **params}.items())
        return self.api.server.url.replace("http://", "ws://") + f"/ws/chat?{query}"

    def ticket(self, headers: dict[str, str]) -> str:
        r = self.api.client.post("/api/v1/auth/ws/ticket", headers=headers)
        assert r.status_code == 200, r.text
        return str(r.json()["ticket"])

    def connect(self, headers: dict[str, str] | None = None, **params: str) -> WS:
        ws = WS(self.url(self.ticket(headers or self.alice), **params))
        assert ws.receive_json()["type"] == "ws.connected"
        ws.snapshot = ws.receive_json()
        assert ws.snapshot["type"] == "history.snapshot"
        return ws

    def bob_saw_nothing(self) -> None:
        self.bob.send_json({"type": "pong", "client_id": "bob-probe"})
        assert drain(self.bob, "bob-probe") == []


def strict_json(text: str | bytes) -> Any:
    """As a browser's JSON.parse: no NaN or Infinity."""
    return json.loads(text, parse_constant=_constant)


def _constant(name: str) -> Any:
    raise AssertionError(f"the server sent {name}, which is not JSON")


def drain(ws: WS, probe: str) -> list[dict[str, Any]]:
    """Everything received before the ack of ``probe`` (a pong sent last)."""
    seen: list[dict[str, Any]] = []
    while True:
        try:
            message = strict_json(ws.conn.recv(timeout=10))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        if message.get("type") == "ack" and message.get("ref") == probe:
            return seen
        if message.get("type") != "ping":
            seen.append(message)


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chat]:
    settings = make_settings(
        tmp_path_factory.mktemp("wsfuzz"),
        realtime={
            "max_frame_bytes": MAX_FRAME,
            "chat_rate_limit": f"{CHAT_LIMIT}/minute",
            "heartbeat_s": 3600,
            "heartbeat_timeout_s": 7200,
        },
    )
    app = create_app(settings, llm=ScriptedLLM(replies=["Fine."]))
    with LiveServer(app) as server:
        api = LiveApi(server, app)
        state = Chat(api)
        yield state
        state.bob.close()
        api.client.close()  # type: ignore[attr-defined]


# Frames that broke the server before: each is sent in every run.
NASTY: list[str | bytes] = [
    '{"type": "pong", "client_id": NaN}',  # Python reads it, then echoes invalid JSON
    '{"type": "pong", "client_id": -Infinity}',
    "[" * 2000 + "]" * 2000,  # nesting deeper than the parser recurses
    '{"type": "pong", "client_id": ' + "9" * 4400 + "}",  # past int's digit limit
    '{"type": "pong", "client_id": "\\ud800"}',  # a lone surrogate, escaped
    '{"type": "chat.send", "message": "a\\udc00b"}',
    "",
    "null",
    '{"type": null}',
    b"\xff\xfe{",  # binary, not UTF-8
]


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=12
    )


def messages() -> st.SearchStrategy[dict[str, Any]]:
    """Objects with a known or made-up type and any fields, of any type."""
    fields = {
        "message": st.text() | json_values(),
        "thread_id": st.text(max_size=200) | json_values(),
        "generation_id": st.text(max_size=80) | json_values(),
        "last_index": st.integers() | json_values(),
        "client_id": st.text(max_size=120) | json_values(),
    }
    return st.builds(
        lambda kind, extra: {"type": kind, **extra},
        st.sampled_from(TYPES) | st.text(max_size=30) | json_values(),
        st.fixed_dictionaries({}, optional=fields),
    )


def frames() -> st.SearchStrategy[str | bytes]:
    """Frames up to the size limit (the larger ones have a test of their own)."""
    return st.one_of(
        messages().map(json.dumps),
        json_values().map(json.dumps),  # valid JSON, mostly not an object
        st.text(max_size=300, alphabet=st.characters(exclude_categories=["Cs"])),  # not JSON
        st.binary(max_size=300),  # a binary frame
        st.sampled_from(NASTY),
    ).filter(_fits)


def _fits(frame: str | bytes) -> bool:
    return len(frame if isinstance(frame, bytes) else frame.encode()) <= MAX_FRAME


@given(batch=st.lists(frames(), min_size=1, max_size=8))
@settings(
    max_examples=EXAMPLES,
    **SETTINGS,
)
def test_any_frame_gets_its_documented_answer(chat: Chat, batch: list[str | bytes]) -> None:
    try:
        check_answers(chat, batch)
    except Exception as exc:  # the batch, which this plugin stack does not print
        raise AssertionError(f"after the frames {batch!r}: {exc}") from exc


def test_frames_that_broke_servers_get_their_documented_answer(chat: Chat) -> None:
    check_answers(chat, NASTY)


def check_answers(chat: Chat, batch: list[str | bytes]) -> None:
    ws = chat.connect()
    for frame in batch:
        ws.conn.send(frame)  # str: a text frame; bytes: a binary frame
    ws.send_json({"type": "pong", "client_id": "probe"})
    for message in drain(ws, "probe"):
        assert message["type"] in SERVER_TYPES, message
        if message["type"] == "error":
            assert message["code"] in ERROR_CODES and message["detail"], message
        if message["type"] == "ack":
            assert message["ok"] or message["error"]["code"], message
    ws.close()
    chat.bob_saw_nothing()


def test_invalid_utf8_text_frame_closes_1007(chat: Chat) -> None:
    """The WebSocket protocol's own rule (RFC 6455 8.1), applied by the server."""
    ws = chat.connect()
    ws.conn.send(b'{"type": "pong", "client_id": "\xff\xfe"}', text=True)
    with pytest.raises(Closed) as closed:
        drain(ws, "never")
    assert closed.value.code == 1007
    chat.bob_saw_nothing()


def test_oversized_frames_close_1009_and_the_server_stays_up(chat: Chat) -> None:
    for frame in ("x" * (MAX_FRAME + 1), b"\x00" * (MAX_FRAME * 20), "é" * MAX_FRAME):
        ws = chat.connect()
        if isinstance(frame, str):
            ws.send_text(frame)
        else:
            ws.conn.send(frame)
        with pytest.raises(Closed) as closed:
            drain(ws, "never")
        assert closed.value.code == 1009
    ws = chat.connect()  # the server still serves
    ws.send_json({"type": "pong", "client_id": "after"})
    assert drain(ws, "after") == []
    ws.close()
    chat.bob_saw_nothing()


def test_a_flood_is_answered_in_order_and_chat_is_rate_limited(chat: Chat) -> None:
    ws, tab = chat.connect(), chat.connect()  # Alice's second tab follows her answers
    for i in range(300):
        ws.send_text("{garbage" if i % 3 else json.dumps({"type": "chat.fly", "client_id": i}))
    for i in range(CHAT_LIMIT + 10):
        ws.send_json({"type": "chat.send", "message": f"flood {i}", "client_id": f"s{i}"})
    ws.send_json({"type": "pong", "client_id": "probe"})
    seen = drain(ws, "probe")
    refused = [m["ref"] for m in seen if m["type"] == "ack" and m.get("for") == "chat.fly"]
    assert refused == list(range(0, 300, 3))  # each answered, in order
    assert sum(m.get("code") == "invalid_json" for m in seen) == 200
    sends = {m["ref"]: m["ok"] for m in seen if m["type"] == "ack" and m["for"] == "chat.send"}
    assert len(sends) == CHAT_LIMIT + 10
    assert sum(sends.values()) <= CHAT_LIMIT  # this test's and earlier examples' sends count
    limited = [m for m in seen if m["type"] == "chat.error" and m["code"] == "rate_limited"]
    assert len(limited) >= 10
    # Bob got nothing; Alice's other tab only her generations' events (no acks, no errors).
    chat.bob_saw_nothing()
    tab.send_json({"type": "pong", "client_id": "tab-probe"})
    assert {m["type"] for m in drain(tab, "tab-probe")} <= {"chat.started", "chat.delta"} | {
        "chat.completed"
    }
    ws.close()
    tab.close()


@given(ticket=st.text(max_size=250) | st.sampled_from(["v1.1.9999999999.n.é", "v1." * 60]))
@settings(
    max_examples=EXAMPLES,
    **SETTINGS,
)
def test_any_bad_ticket_closes_4401(chat: Chat, ticket: str) -> None:
    from urllib.parse import quote

    ws = WS(chat.url(quote(ticket, safe="")))
    with pytest.raises(Closed) as closed:
        drain(ws, "never")
    assert closed.value.code == 4401


def test_weird_thread_ids_get_an_empty_snapshot(live_factory: Any, backend: dict[str, Any]) -> None:
    """On PostgreSQL too, which cannot compare text holding NUL."""
    api = live_factory(**backend)
    headers = api.setup_admin()
    for thread_id in ("a%00b", "%00", "..%2F..", "x" * 128):
        r = api.client.post("/api/v1/auth/ws/ticket", headers=headers)
        url = api.server.url.replace("http://", "ws://")
        ws = WS(f"{url}/ws/chat?t={r.json()['ticket']}&thread_id={thread_id}")
        assert ws.receive_json()["type"] == "ws.connected"
        snapshot = ws.receive_json()
        assert snapshot == {**snapshot, "type": "history.snapshot", "thread_id": None}
        ws.close()
