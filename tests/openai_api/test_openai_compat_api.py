"""The OpenAI-compatible API, driven by the official ``openai`` package over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from mongars.app import create_app
from mongars.errors import ProviderUnavailable
from tests.conftest import PASSWORD, LiveServer, make_settings
from tests.fakes import ScriptedLLM

ANSWER = "Hello there. How can I help?"


@dataclass
class Live:
    server: LiveServer
    llm: ScriptedLLM
    http: httpx.Client  # logged in as the admin (JWT)
    key: str
    key_id: int

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.url + "/v1", api_key=key or self.key, max_retries=0
        )

    def history(self, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/conversation/history", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def new_key(self, **body: Any) -> dict[str, Any]:
        return live_key(self.http, **body)


def setup_admin(app: Any, http: httpx.Client) -> None:
    """Create the first admin through the setup token and log ``http`` in as them."""
    token = app.state.runtime.setup_token
    r = http.post("/api/v1/setup", json={"token": token, "username": "admin", "password": PASSWORD})
    assert r.status_code == 201, r.text
    # No retry: the request session commits before the response is sent.
    r = http.post("/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"


def live_key(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/api/v1/keys", json={"name": "test", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    llm = ScriptedLLM(replies=[ANSWER])
    app = create_app(make_settings(tmp_path), llm=llm)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        setup_admin(app, http)
        key = live_key(http)
        yield Live(server, llm, http, key["key"], key["id"])


def test_models_list_names_the_real_model(live: Live) -> None:
    models = live.client().models.list()
    assert [m.id for m in models.data] == ["scripted-model"]
    assert models.data[0].owned_by == "mongars" and models.data[0].object == "model"
    assert live.client().models.retrieve("scripted-model").id == "scripted-model"


def test_non_streaming_completion_is_a_stored_monGARS_turn(live: Live) -> None:
    completion = live.client().chat.completions.create(
        model="gpt-4o-anything", messages=[{"role": "user", "content": "Hi there"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "scripted-model"  # the real model, whatever was asked
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and choice.message.content == ANSWER
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    (turn,) = live.history()
    assert turn["query"] == "Hi there" and turn["response"] == ANSWER
    assert turn["session_id"] == f"apikey-{live.key_id}"


def test_streaming_deltas_join_to_the_answer_and_the_turn_is_stored(live: Live) -> None:
    stream = live.client().chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    (turn,) = live.history()
    assert turn["query"] == "Stream please" and turn["response"] == ANSWER


def test_streaming_without_usage_option_has_no_usage_chunk(live: Live) -> None:
    with httpx.stream(
        "POST",
        live.server.url + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"Authorization": f"Bearer {live.key}"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert '"finish_reason":"stop"' in lines[-2] and '"usage":null' in lines[-2]


def test_client_history_reaches_the_model_as_role_separated_messages(live: Live) -> None:
    live.client().chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "orphan question"},  # no answer: dropped
            {"role": "user", "content": "second question"},
            {"role": "assistant", "content": "second answer"},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "third question"}]},
        ],
    )
    sent = [(m.role, m.content) for m in live.llm.calls[-1]]
    assert sent[0][0] == "system"
    assert sent[0][1].endswith("Answer like a pirate.\n\nBe brief.")
    assert sent[1:] == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
        ("assistant", "second answer"),
        ("user", "third question"),
    ]
    (turn,) = live.history()  # only the new message is stored, not the client's history
    assert turn["query"] == "third question"


def test_single_message_continues_the_key_thread_when_use_history(live: Live) -> None:
    client = live.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "one"}])
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "two"}])
    sent = [(m.role, m.content) for m in live.llm.calls[-1]][1:]
    assert sent == [("user", "one"), ("assistant", ANSWER), ("user", "two")]

    # a key with use_history=False sees only what the client sends
    other = live.new_key(use_history=False)
    no_history = live.client(other["key"])
    no_history.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    no_history.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    assert [(m.role, m.content) for m in live.llm.calls[-1]][1:] == [("user", "b")]
    sessions = {t["session_id"] for t in live.history()}
    assert sessions == {f"apikey-{live.key_id}", f"apikey-{other['id']}"}


def test_user_field_selects_a_separate_thread(live: Live) -> None:
    client = live.client()
    client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "for alice"}], user="alice"
    )
    client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "for bob"}], user="bob smith/../x"
    )
    client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "alice again"}], user="alice"
    )
    sent = [m.content for m in live.llm.calls[-1] if m.role == "user"]
    assert sent == ["for alice", "alice again"]  # bob's turn is in another thread
    sessions = {t["query"]: t["session_id"] for t in live.history()}
    assert sessions["for alice"] == f"apikey-{live.key_id}-alice"
    bob = sessions["for bob"]
    assert bob.startswith(f"apikey-{live.key_id}-bob_smith_.._x-") and "/" not in bob


def test_wrong_or_revoked_key_raises_authentication_error(live: Live) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        live.client("mg_not-a-real-key").models.list()
    assert wrong.value.status_code == 401
    assert wrong.value.code == "invalid_api_key"
    assert isinstance(wrong.value.body, dict) and wrong.value.body["type"]

    assert live.http.delete(f"/api/v1/keys/{live.key_id}").status_code == 204
    with pytest.raises(openai.AuthenticationError):
        live.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert live.llm.calls == [] and live.history() == []


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "system", "content": "only a system message"}],
        [{"role": "user", "content": "   "}],
        [{"role": "tool", "content": "42", "tool_call_id": "x"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
    ],
)
def test_bad_conversations_raise_bad_request(live: Live, messages: list[Any]) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        live.client().chat.completions.create(model="m", messages=messages)
    assert err.value.status_code == 400
    assert isinstance(err.value.body, dict) and err.value.body["type"] == "invalid_request_error"
    assert live.llm.calls == [] and live.history() == []


def test_invalid_body_is_400_in_openai_shape(live: Live) -> None:
    r = httpx.post(
        live.server.url + "/v1/chat/completions",
        json={"model": "m", "messages": []},
        headers={"Authorization": f"Bearer {live.key}"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "messages"
    assert error["message"]


def test_message_too_large_for_the_context_is_413(tmp_path: Path) -> None:
    llm = ScriptedLLM(context_window=300)
    settings = make_settings(tmp_path, llm={"max_tokens": 100, "context_window": 300})
    app = create_app(settings, llm=llm)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        setup_admin(app, http)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=live_key(http)["key"])
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "word " * 400}]
            )
    assert err.value.status_code == 413
    assert err.value.code == "context_length_exceeded"


@pytest.mark.parametrize("stream", [False, True])
def test_provider_failure_is_503(live: Live, stream: bool) -> None:
    live.llm.fail_with = ProviderUnavailable("down")
    with pytest.raises(openai.InternalServerError) as err:
        live.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert err.value.status_code == 503
    assert isinstance(err.value.body, dict)
    assert err.value.body["type"] == "server_error" and err.value.body["message"] == "down"
    assert live.history() == []


def test_failure_mid_stream_raises_and_stores_nothing(live: Live) -> None:
    live.llm.fail_with, live.llm.fail_after = ProviderUnavailable("engine died"), 2
    stream = live.client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="engine died"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello there."
    assert live.history() == []


def test_closing_a_stream_early_stops_generation_and_keeps_the_part_seen(
    tmp_path: Path,
) -> None:
    llm = ScriptedLLM(replies=[" ".join(f"w{i}" for i in range(200))], delay=0.02)
    app = create_app(make_settings(tmp_path), llm=llm)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        setup_admin(app, http)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=live_key(http)["key"])
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "long please"}], stream=True
        )
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()
        deadline = time.time() + 10  # the full answer would take 4 s
        history: list[dict[str, Any]] = []
        while time.time() < deadline and not history:
            time.sleep(0.05)
            history = http.get("/api/v1/conversation/history").json()
    assert len(history) == 1  # stored as soon as generation stopped, well before the end
    words = history[0]["response"].split()
    assert words[:3] == ["w0", "w1", "w2"] and len(words) < 150
