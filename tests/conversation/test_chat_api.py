"""The chat pipeline through the HTTP API, with a scripted model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mongars.errors import ProviderTimeout, ProviderUnavailable
from tests.conftest import Api
from tests.fakes import ScriptedLLM

CONTRACT_FIELDS = {"response", "confidence", "processing_time", "speech_turn"}
SPEECH_FIELDS = {"turn_id", "text", "created_at", "segments", "average_words_per_second", "tempo"}


def chat(api: Api, headers: dict[str, str], message: Any, session_id: str | None = None):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    return api.client.post("/api/v1/conversation/chat", json=body, headers=headers)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_chat_matches_v1_contract(api: Api) -> None:
    headers = api.setup_admin()
    r = chat(api, headers, "Hello?")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= CONTRACT_FIELDS
    assert body["response"] == "Hello there. How can I help?"
    assert body["confidence"] == pytest.approx(0.5)  # the scripted logprobs are log(0.5)
    assert body["processing_time"] > 0
    speech = body["speech_turn"]
    assert set(speech) >= SPEECH_FIELDS
    assert [s["text"] for s in speech["segments"]] == ["Hello there.", "How can I help?"]
    assert all({"text", "estimated_duration", "pause_after"} <= set(s) for s in speech["segments"])
    assert speech["segments"][-1]["pause_after"] == 0
    assert speech["turn_id"] == str(body["turn_id"])


def test_stored_text_is_byte_for_byte(api: Api) -> None:
    headers = api.setup_admin()
    tricky = (
        "  <script>alert('x')</script> & \"quotes\" 'single' 🙂 naïve 中文\n\tcode: a<b && c>d  "
    )
    assert chat(api, headers, tricky).status_code == 200
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert history[0]["query"] == tricky


def test_history_newest_first_and_limit(api: Api) -> None:
    headers = api.setup_admin()
    for i in range(4):
        assert chat(api, headers, f"message {i}").status_code == 200
    r = api.client.get("/api/v1/conversation/history?user_id=admin&limit=3", headers=headers)
    assert [h["query"] for h in r.json()] == ["message 3", "message 2", "message 1"]
    assert set(r.json()[0]) >= {"user_id", "query", "response", "timestamp"}
    assert r.json()[0]["user_id"] == "admin"
    assert (
        api.client.get("/api/v1/conversation/history?limit=0", headers=headers).status_code == 422
    )


def test_user_cannot_read_or_continue_another_users_history(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    first = chat(api, admin, "admin secret").json()
    r = api.client.get("/api/v1/conversation/history?user_id=admin", headers=bob)
    assert r.status_code == 403
    assert api.client.get("/api/v1/conversation/history", headers=bob).json() == []
    hijack = chat(api, bob, "let me in", session_id=first["session_id"])
    assert hijack.status_code == 404
    assert len(api.client.get("/api/v1/conversation/history", headers=admin).json()) == 1


def test_session_id_keeps_a_thread(api: Api) -> None:
    llm = api.runtime.llm
    headers = api.setup_admin()
    first = chat(api, headers, "first question", session_id="my-thread").json()
    assert first["session_id"] == "my-thread"
    chat(api, headers, "second question", session_id="my-thread")
    sent = [(m.role, m.content) for m in llm.calls[-1]]
    assert sent[0][0] == "system"
    assert sent[1:] == [
        ("user", "first question"),
        ("assistant", "Hello there. How can I help?"),
        ("user", "second question"),
    ]
    chat(api, headers, "unrelated")  # a new thread sees no history
    assert [m.role for m in llm.calls[-1]] == ["system", "user"]


@pytest.mark.parametrize("message", ["", "   ", "\n\t ", None, 42])
def test_empty_or_invalid_message_is_422(api: Api, message: Any) -> None:
    headers = api.setup_admin()
    r = chat(api, headers, message)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input" and r.json()["detail"]


def test_bad_session_id_is_422(api: Api) -> None:
    headers = api.setup_admin()
    for reserved in ("apikey-1", "search"):
        r = chat(api, headers, "hi", session_id=reserved)
        assert r.status_code == 422 and "reserved" in r.json()["detail"]
    assert chat(api, headers, "nul \x00 inside").status_code == 422
    assert chat(api, headers, "hi", session_id="../../etc").status_code == 422
    assert chat(api, headers, "hi", session_id="x" * 200).status_code == 422


def test_message_over_max_length_is_refused_with_limit(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(chat={"max_message_chars": 100})
    headers = api.setup_admin()
    r = chat(api, headers, "a" * 101)
    assert r.status_code == 413
    assert "100 characters" in r.json()["detail"]
    assert chat(api, headers, "a" * 100).status_code == 200


def test_message_that_cannot_fit_the_context_is_413(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(
        provider=ScriptedLLM(context_window=300),
        **{"llm": {"max_tokens": 100, "context_window": 300}},
    )
    headers = api.setup_admin()
    r = chat(api, headers, "word " * 400)
    assert r.status_code == 413
    assert r.json()["code"] == "context_too_large"
    assert "limit is" in r.json()["detail"] and "tokens" in r.json()["detail"]
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []


def test_history_is_trimmed_oldest_first_to_fit(api_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies=["ok"], context_window=200)
    api = api_factory(provider=llm, **{"llm": {"max_tokens": 50, "context_window": 300}})
    headers = api.setup_admin()
    for i in range(8):
        chat(api, headers, f"turn {i} " + "pad " * 20, session_id="t")
    chat(api, headers, "final", session_id="t")
    sent = llm.calls[-1]
    assert sent[-1].content == "final"
    kept = [m.content.split()[1] for m in sent if m.role == "user" and m.content != "final"]
    assert kept == sorted(kept) and kept[-1] == "7"  # newest kept, in order
    assert "0" not in kept  # oldest dropped
    total = sum(len(m.content.split()) + 2 for m in sent) + 1
    assert total <= 200 - 50


def test_stream_sends_deltas_then_done_with_same_fields(api: Api) -> None:
    headers = api.setup_admin()
    with api.client.stream(
        "POST", "/api/v1/conversation/chat/stream", json={"message": "hi"}, headers=headers
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"delta"} and len(kinds) > 2
    done = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "delta") == done["response"]
    plain = chat(api, headers, "hi").json()
    assert set(done) == set(plain)
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert len(history) == 2


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ProviderUnavailable("down"), 503, "provider_unavailable"),
        (ProviderTimeout("slow"), 504, "provider_timeout"),
    ],
)
def test_provider_failure_is_an_error_and_nothing_is_stored(
    api_factory,
    error: Exception,
    status: int,
    code: str,  # type: ignore[no-untyped-def]
) -> None:
    llm = ScriptedLLM()
    api = api_factory(provider=llm)
    headers = api.setup_admin()
    llm.fail_with = error
    r = chat(api, headers, "hello")
    assert r.status_code == status and r.json()["code"] == code
    r = api.client.post("/api/v1/conversation/chat/stream", json={"message": "x"}, headers=headers)
    assert r.status_code == status and r.json()["code"] == code
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []


def test_failure_mid_stream_sends_error_event_and_stores_nothing(api_factory) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM()
    api = api_factory(provider=llm)
    headers = api.setup_admin()
    llm.fail_with, llm.fail_after = ProviderUnavailable("engine died"), 2
    with api.client.stream(
        "POST", "/api/v1/conversation/chat/stream", json={"message": "x"}, headers=headers
    ) as r:
        events = sse_events(r.read().decode())
    assert [k for k, _ in events] == ["delta", "delta", "error"]
    assert events[-1][1] == {"detail": "engine died", "code": "provider_unavailable"}
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []


def test_empty_model_output_is_502_and_not_stored(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = api_factory(provider=ScriptedLLM(replies=[""]))
    headers = api.setup_admin()
    r = chat(api, headers, "hello")
    assert r.status_code == 502 and r.json()["code"] == "empty_output"
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []


def test_chat_requires_auth(api: Api) -> None:
    assert api.client.post("/api/v1/conversation/chat", json={"message": "hi"}).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert chat(api, bad, "hi").status_code == 401


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/ready").status_code == 200
    headers = api.setup_admin()
    chat(api, headers, "hi")
    text = api.client.get("/metrics").text
    assert 'llm_completion_tokens_total{model="scripted-model"' in text
    assert "llm_time_to_first_token_seconds_bucket" in text
    assert "llm_generation_tokens_per_second" in text
    assert 'http_route="/api/v1/conversation/chat"' in text
    api.runtime.llm.is_ready = False
    r = api.client.get("/ready")
    assert r.status_code == 503 and r.json()["checks"] == {"database": True, "model": False}


def test_turn_records_tokens_and_stage_timings(api: Api) -> None:
    from sqlalchemy import select

    from mongars.conversation.models import Turn

    headers = api.setup_admin()
    body = chat(api, headers, "hello there").json()

    async def load() -> Turn:
        async with api.runtime.sessions() as s:
            return (await s.execute(select(Turn).where(Turn.id == body["turn_id"]))).scalar_one()

    turn = api.client.portal.call(load)  # type: ignore[union-attr]
    assert turn.model == "scripted-model" and turn.status == "completed"
    assert turn.prompt_tokens > 0 and turn.completion_tokens == 6
    assert turn.confidence == pytest.approx(0.5)
    assert {"load_ms", "assemble_ms", "generate_ms", "ttft_ms", "persist_ms"} <= set(turn.stage_ms)
    assert turn.latency_ms > 0


def test_huge_body_is_refused_before_parsing(api: Api) -> None:
    headers = api.setup_admin()
    big = {"message": "x" * (2 * 1024 * 1024)}
    r = api.client.post("/api/v1/conversation/chat", json=big, headers=headers)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"message": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    r = api.client.post(
        "/api/v1/conversation/chat",
        content=chunks(),
        headers={**headers, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert api.client.get("/api/v1/conversation/history", headers=headers).json() == []
