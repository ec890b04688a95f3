"""The Ollama and OpenAI-compatible providers against real HTTP servers on loopback.

The servers (tests/llm/fake_servers.py) speak each protocol's streaming format
and record what they receive, so these tests check both directions: what the
provider sends, and how it turns every answer (good, slow, broken, absent) into
stream items or the provider errors the API maps to 502/503/504.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from mongars.conversation.schemas import ChatResponse
from mongars.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from mongars.llm.base import (
    ChatMessage,
    Delta,
    Finish,
    GenerationParams,
    LLMProvider,
    StreamItem,
)
from mongars.llm.http import estimate_tokens
from mongars.llm.ollama import OllamaProvider
from mongars.llm.openai_compat import OpenAICompatProvider
from tests.conftest import Api, make_settings
from tests.llm.fake_servers import (
    FakeOllama,
    FakeOpenAI,
    FakeServer,
    ollama_answer,
    openai_answer,
    refused_url,
    serve,
)

PIECES: list[tuple[str, list[float]]] = [
    ("Hel", [-0.1]),
    ("lo", [-0.2]),
    (" world", [-0.3, -0.05]),
    ("!", [-1.5]),
]
ANSWER = "Hello world!"
ALL_LOGPROBS = [lp for _, lps in PIECES for lp in lps]
EXPECTED_CONFIDENCE = sum(math.exp(lp) for lp in ALL_LOGPROBS) / len(ALL_LOGPROBS)

MESSAGES = [
    ChatMessage("system", "You are terse."),
    ChatMessage("user", "Say hello."),
    ChatMessage("assistant", "Hello."),
    ChatMessage("user", "Again, to the world."),
]
PARAMS = GenerationParams(max_tokens=32, temperature=0.3, top_p=0.9, seed=7)
CONTEXT_WINDOW = 2048
PROVIDERS = ["ollama", "openai"]


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with serve(FakeOllama()) as fake:
        assert isinstance(fake, FakeOllama)
        yield fake


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as fake:
        assert isinstance(fake, FakeOpenAI)
        yield fake


@pytest.fixture(params=PROVIDERS)
def fake(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    """Either server, for behaviour both providers must share."""
    server: FakeServer = FakeOllama() if request.param == "ollama" else FakeOpenAI()
    with serve(server) as running:
        yield running


def make_provider(fake: FakeServer | str, timeout_s: float = 5.0, model: str | None = None) -> Any:
    """The provider matching ``fake`` (or, for a plain URL, an Ollama provider)."""
    url = fake if isinstance(fake, str) else fake.url
    if isinstance(fake, FakeOpenAI):
        return OpenAICompatProvider(
            url, "m1" if model is None else model, CONTEXT_WINDOW, timeout_s
        )
    return OllamaProvider(url, model or "tiny", CONTEXT_WINDOW, timeout_s)


def script(fake: FakeServer, pieces: Sequence[tuple[str, Sequence[float]]], **kw: Any) -> None:
    """Make ``fake`` stream ``pieces`` as a complete, well-formed answer."""
    if isinstance(fake, FakeOllama):
        fake.chat_lines = list(ollama_answer(pieces, **kw))
    else:
        assert isinstance(fake, FakeOpenAI)
        fake.chunks = list(openai_answer(pieces, **kw))


def chat_path(fake: FakeServer) -> str:
    return "/api/chat" if isinstance(fake, FakeOllama) else "/v1/chat/completions"


async def collect(
    provider: LLMProvider,
    messages: Sequence[ChatMessage] = MESSAGES,
    params: GenerationParams = PARAMS,
) -> list[StreamItem]:
    items: list[StreamItem] = []
    try:
        await provider.start()
        async with aclosing(provider.stream(messages, params)) as stream:  # type: ignore[type-var]
            async for item in stream:
                items.append(item)
    finally:
        await provider.close()
    return items


def deltas(items: Sequence[StreamItem]) -> list[Delta]:
    return [i for i in items if isinstance(i, Delta)]


def role_messages(messages: Sequence[ChatMessage] = MESSAGES) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


# --- streaming, provider level ---------------------------------------------------------


async def test_ollama_streams_deltas_then_one_finish(ollama: FakeOllama) -> None:
    ollama.chat_lines = list(ollama_answer(PIECES, prompt_eval_count=12, eval_count=5))
    items = await collect(make_provider(ollama))

    assert [type(i) for i in items] == [Delta] * len(PIECES) + [Finish]
    assert "".join(d.text for d in deltas(items)) == ANSWER
    assert [d.logprobs for d in deltas(items)] == [lps for _, lps in PIECES]
    assert items[-1] == Finish(prompt_tokens=12, completion_tokens=5, finish_reason="stop")

    [body] = ollama.bodies("/api/chat")
    assert body["model"] == "tiny"
    assert body["stream"] is True and body["logprobs"] is True
    assert body["messages"] == role_messages()
    assert body["options"] == {
        "num_ctx": CONTEXT_WINDOW,
        "num_predict": PARAMS.max_tokens,
        "temperature": PARAMS.temperature,
        "top_p": PARAMS.top_p,
        "repeat_penalty": PARAMS.repeat_penalty,
        "seed": 7,
    }


async def test_ollama_leaves_seed_out_when_unset(ollama: FakeOllama) -> None:
    ollama.chat_lines = list(ollama_answer(PIECES))
    params = GenerationParams(max_tokens=5, temperature=0.0)
    await collect(make_provider(ollama), params=params)
    [body] = ollama.bodies("/api/chat")
    assert "seed" not in body["options"]
    assert body["options"]["num_predict"] == 5 and body["options"]["top_p"] == 1.0


async def test_openai_streams_deltas_then_one_finish_with_usage(openai: FakeOpenAI) -> None:
    openai.chunks = list(openai_answer(PIECES, prompt_tokens=21, completion_tokens=5))
    items = await collect(make_provider(openai))

    assert [type(i) for i in items] == [Delta] * len(PIECES) + [Finish]
    assert "".join(d.text for d in deltas(items)) == ANSWER
    assert [d.logprobs for d in deltas(items)] == [lps for _, lps in PIECES]
    assert items[-1] == Finish(prompt_tokens=21, completion_tokens=5, finish_reason="stop")

    [body] = openai.bodies("/v1/chat/completions")
    assert body["model"] == "m1"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == role_messages()
    assert body["max_tokens"] == PARAMS.max_tokens
    assert body["temperature"] == PARAMS.temperature and body["top_p"] == PARAMS.top_p
    assert body["seed"] == 7 and body["logprobs"] is True


async def test_finish_reason_length_is_passed_through(fake: FakeServer) -> None:
    if isinstance(fake, FakeOllama):
        script(fake, PIECES, done_reason="length")
    else:
        script(fake, PIECES, finish_reason="length")
    items = await collect(make_provider(fake))
    assert isinstance(items[-1], Finish) and items[-1].finish_reason == "length"


async def test_streamed_lines_arrive_as_separate_deltas(fake: FakeServer) -> None:
    """Deltas are yielded as the server sends them, not after the whole answer."""
    script(fake, PIECES)
    fake.line_delay_s = 0.05
    provider = make_provider(fake)
    arrivals: list[float] = []
    try:
        async with aclosing(provider.stream(MESSAGES, PARAMS)) as stream:
            async for item in stream:
                if isinstance(item, Delta):
                    arrivals.append(time.monotonic())
    finally:
        await provider.close()
    assert len(arrivals) == len(PIECES)
    assert arrivals[-1] - arrivals[0] >= 0.1


async def test_openai_empty_model_uses_first_listed_model(openai: FakeOpenAI) -> None:
    openai.models = ["first-model", "second-model"]
    script(openai, PIECES)
    # A base URL ending in /v1 (the usual way to write it) must work too.
    provider = OpenAICompatProvider(openai.url + "/v1/", "", CONTEXT_WINDOW, 5.0)
    assert provider.model_id == ""
    items = await collect(provider)
    assert provider.model_id == "first-model"
    assert isinstance(items[-1], Finish)
    assert [r.path for r in openai.requests] == ["/v1/models", "/v1/chat/completions"]
    assert openai.bodies("/v1/chat/completions")[0]["model"] == "first-model"


async def test_openai_named_model_does_not_list_models(openai: FakeOpenAI) -> None:
    provider = make_provider(openai, model="chosen")
    await provider.start()
    await provider.close()
    assert provider.model_id == "chosen"
    assert openai.requests == []


async def test_openai_server_without_models_fails_start(openai: FakeOpenAI) -> None:
    openai.models = []
    provider = make_provider(openai, model="")
    with pytest.raises(ProviderError, match="lists no models"):
        await provider.start()
    await provider.close()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("<html>not an API</html>", "malformed JSON"),
        ('[{"id": "m1"}]', "unexpected payload"),
        ('{"data": [{"object": "model"}]}', "lists no models"),
        ('{"data": "m1"}', "lists no models"),
    ],
)
async def test_openai_bad_model_list_fails_start_with_provider_error(
    openai: FakeOpenAI, raw: str, match: str
) -> None:
    openai.models_raw = raw
    provider = make_provider(openai, model="")
    with pytest.raises(ProviderError, match=match):
        await provider.start()
    await provider.close()
    assert provider.model_id == ""


async def test_openai_start_on_unreachable_server_is_unavailable() -> None:
    with refused_url() as url:
        provider = OpenAICompatProvider(url, "", CONTEXT_WINDOW, 5.0)
        with pytest.raises(ProviderUnavailable):
            await provider.start()
        await provider.close()


async def test_openai_counts_tokens_with_tokenize_when_available(openai: FakeOpenAI) -> None:
    openai.tokenize_factor = 3
    provider = make_provider(openai)
    try:
        counts = await provider.message_tokens(
            [ChatMessage("system", "one two"), ChatMessage("user", "a b c d")]
        )
        again = await provider.message_tokens([ChatMessage("user", "x")])
    finally:
        await provider.close()
    assert counts == [2 * 3 + 4, 4 * 3 + 4]
    assert again == [1 * 3 + 4]
    bodies = openai.bodies("/tokenize")
    assert len(bodies) == 3
    assert bodies[0]["model"] == "m1"
    assert bodies[0]["content"] == bodies[0]["prompt"] == "one two"


async def test_openai_estimates_tokens_when_tokenize_is_missing(openai: FakeOpenAI) -> None:
    openai.tokenize_factor = None  # /tokenize answers 404
    provider = make_provider(openai)
    texts = ["one two", "a much longer message, with punctuation and ünïcödé"]
    try:
        counts = await provider.message_tokens([ChatMessage("user", t) for t in texts])
        again = await provider.message_tokens([ChatMessage("user", "x")])
    finally:
        await provider.close()
    assert counts == [estimate_tokens(t) + 4 for t in texts]
    assert again == [estimate_tokens("x") + 4]
    # After one 404 the provider stops asking.
    assert len(openai.bodies("/tokenize")) == 1


async def test_ollama_estimates_tokens_without_asking_the_server(ollama: FakeOllama) -> None:
    provider = make_provider(ollama)
    try:
        counts = await provider.message_tokens(MESSAGES)
        overhead = await provider.prompt_overhead()
    finally:
        await provider.close()
    assert counts == [estimate_tokens(m.content) + 4 for m in MESSAGES]
    assert overhead > 0
    assert ollama.requests == []


async def test_ready_follows_the_server(fake: FakeServer) -> None:
    provider = make_provider(fake)
    try:
        assert await provider.ready() is True
    finally:
        await provider.close()
    path = "/api/tags" if isinstance(fake, FakeOllama) else "/v1/models"
    assert [r.path for r in fake.requests] == [path]
    with refused_url() as url:
        down = OllamaProvider(url, "tiny", CONTEXT_WINDOW, 5.0)
        down_openai = OpenAICompatProvider(url, "m1", CONTEXT_WINDOW, 5.0)
        try:
            assert await down.ready() is False
            assert await down_openai.ready() is False
        finally:
            await down.close()
            await down_openai.close()


# --- error paths, provider level ---------------------------------------------------


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_unreachable_server_is_provider_unavailable(kind: str) -> None:
    with refused_url() as url:
        provider = (
            OllamaProvider(url, "tiny", CONTEXT_WINDOW, 5.0)
            if kind == "ollama"
            else OpenAICompatProvider(url, "m1", CONTEXT_WINDOW, 5.0)
        )
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="unreachable") as info:
            await collect(provider)
    assert time.monotonic() - started < 3
    assert info.value.status == 503


async def test_slow_server_is_provider_timeout(fake: FakeServer) -> None:
    script(fake, PIECES)
    fake.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="timed out") as info:
        await collect(make_provider(fake, timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.5
    assert info.value.status == 504
    assert len(fake.bodies(chat_path(fake))) == 1


async def test_stall_between_lines_is_provider_timeout(fake: FakeServer) -> None:
    """The read timeout also applies between streamed lines, not only to the headers."""
    script(fake, PIECES)
    fake.line_delay_s = 3.0
    items: list[StreamItem] = []
    provider = make_provider(fake, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        try:
            async with aclosing(provider.stream(MESSAGES, PARAMS)) as stream:
                async for item in stream:
                    items.append(item)
        finally:
            await provider.close()
    assert time.monotonic() - started < 2.5
    # Ollama's first line carries "Hel"; the OpenAI stream starts with a role-only chunk.
    assert [d.text for d in deltas(items)] == (["Hel"] if isinstance(fake, FakeOllama) else [])
    assert not any(isinstance(i, Finish) for i in items)


@pytest.mark.parametrize(
    ("kind", "error_body"),
    [
        ("ollama", {"error": "boom: out of memory"}),
        ("openai", {"error": {"message": "boom: out of memory", "type": "server_error"}}),
        ("openai", {"message": "boom: out of memory"}),
    ],
)
async def test_http_500_is_provider_error_with_the_message(kind: str, error_body: Any) -> None:
    server: FakeServer = FakeOllama() if kind == "ollama" else FakeOpenAI()
    server.status, server.error_body = 500, error_body
    with serve(server), pytest.raises(ProviderError) as info:
        await collect(make_provider(server))
    assert type(info.value) is ProviderError
    assert info.value.status == 502 and info.value.code == "provider_error"
    assert "HTTP 500" in info.value.detail
    assert "boom: out of memory" in info.value.detail
    assert "{" not in info.value.detail  # the message, not the raw JSON


@pytest.mark.parametrize("status", [503, 429])
async def test_http_503_and_429_are_provider_unavailable(fake: FakeServer, status: int) -> None:
    fake.status, fake.error_body = status, {"error": "model is loading"}
    with pytest.raises(ProviderUnavailable, match="model is loading") as info:
        await collect(make_provider(fake))
    assert info.value.status == 503
    assert f"HTTP {status}" in info.value.detail


async def test_http_504_is_provider_timeout(fake: FakeServer) -> None:
    fake.status, fake.error_body = 504, {"error": "upstream timed out"}
    with pytest.raises(ProviderTimeout, match="upstream timed out"):
        await collect(make_provider(fake))


async def test_http_404_model_not_found_is_provider_error(ollama: FakeOllama) -> None:
    ollama.status, ollama.error_body = 404, {"error": "model 'tiny' not found"}
    with pytest.raises(ProviderError, match="model 'tiny' not found") as info:
        await collect(make_provider(ollama))
    assert type(info.value) is ProviderError


async def test_ollama_error_line_is_provider_error(ollama: FakeOllama) -> None:
    ollama.chat_lines = [{"error": "model not found"}]
    with pytest.raises(ProviderError, match="model not found") as info:
        await collect(make_provider(ollama))
    assert type(info.value) is ProviderError


async def test_ollama_error_line_mid_stream_stops_the_answer(ollama: FakeOllama) -> None:
    ollama.chat_lines = [*ollama_answer(PIECES[:2], done=False), {"error": "out of memory"}]
    items: list[StreamItem] = []
    provider = make_provider(ollama)
    with pytest.raises(ProviderError, match="out of memory"):
        try:
            async with aclosing(provider.stream(MESSAGES, PARAMS)) as stream:
                async for item in stream:
                    items.append(item)
        finally:
            await provider.close()
    assert [d.text for d in deltas(items)] == ["Hel", "lo"]
    assert not any(isinstance(i, Finish) for i in items)


async def test_openai_error_event_is_provider_error(openai: FakeOpenAI) -> None:
    openai.chunks = [{"error": {"message": "context length exceeded", "code": 400}}]
    with pytest.raises(ProviderError, match="context length exceeded"):
        await collect(make_provider(openai))


async def test_malformed_json_is_provider_error(fake: FakeServer) -> None:
    if isinstance(fake, FakeOllama):
        fake.chat_lines = [ollama_answer(PIECES)[0], '{"message": {"content": "x"', "[1, 2]"]
    else:
        fake.chunks = [openai_answer(PIECES)[1], '{"choices": [', "[1, 2]"]
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        await collect(make_provider(fake))
    assert type(info.value) is ProviderError


async def test_json_that_is_not_an_object_is_provider_error(fake: FakeServer) -> None:
    if isinstance(fake, FakeOllama):
        fake.chat_lines = ["[1, 2]"]
    else:
        fake.chunks = ["[1, 2]"]
    with pytest.raises(ProviderError, match="unexpected payload"):
        await collect(make_provider(fake))


async def test_stream_closed_before_done_is_provider_error(fake: FakeServer) -> None:
    if isinstance(fake, FakeOllama):
        fake.chat_lines = list(ollama_answer(PIECES, done=False))
        match = "before it was done"
    else:
        assert isinstance(fake, FakeOpenAI)
        fake.chunks = list(openai_answer(PIECES))
        fake.send_done = False
        match = "without \\[DONE\\]"
    items: list[StreamItem] = []
    provider = make_provider(fake)
    with pytest.raises(ProviderError, match=match) as info:
        try:
            async with aclosing(provider.stream(MESSAGES, PARAMS)) as stream:
                async for item in stream:
                    items.append(item)
        finally:
            await provider.close()
    assert type(info.value) is ProviderError
    assert "".join(d.text for d in deltas(items)) == ANSWER
    assert not any(isinstance(i, Finish) for i in items)


async def test_connection_dropped_mid_stream_is_a_provider_failure(fake: FakeServer) -> None:
    """A server that dies mid-answer gives a mapped provider error, never a raw httpx one."""
    script(fake, PIECES)
    fake.drop_after = 3
    items: list[StreamItem] = []
    provider = make_provider(fake)
    with pytest.raises((ProviderError, ProviderUnavailable)):
        try:
            async with aclosing(provider.stream(MESSAGES, PARAMS)) as stream:
                async for item in stream:
                    items.append(item)
        finally:
            await provider.close()
    assert deltas(items)
    assert not any(isinstance(i, Finish) for i in items)


async def test_empty_body_is_provider_error(fake: FakeServer) -> None:
    if isinstance(fake, FakeOllama):
        fake.chat_lines = []
    else:
        assert isinstance(fake, FakeOpenAI)
        fake.chunks, fake.send_done = [], False
    with pytest.raises(ProviderError):
        await collect(make_provider(fake))


# --- end to end through the API --------------------------------------------------


def llm_settings(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": kind,
        "base_url": url,
        "model": "tiny" if kind == "ollama" else "m1",
        "context_window": CONTEXT_WINDOW,
        "max_tokens": 64,
        "temperature": 0.2,
        "timeout_s": 5.0,
        **extra,
    }


def chat(api: Api, headers: dict[str, str], message: str, **extra: Any) -> Any:
    return api.client.post(
        "/api/v1/conversation/chat", json={"message": message, **extra}, headers=headers
    )


def sse_frames(text: str) -> list[tuple[str, Any]]:
    frames: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        frames.append((fields["event"], json.loads(fields["data"])))
    return frames


def history(api: Api, headers: dict[str, str]) -> list[Any]:
    r = api.client.get("/api/v1/conversation/history", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def check_answer(body: dict[str, Any], model: str) -> None:
    assert set(body) == set(ChatResponse.model_fields)
    assert body["response"] == ANSWER
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["confidence"] == pytest.approx(EXPECTED_CONFIDENCE)
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": len(ALL_LOGPROBS)}
    assert body["model"] == model
    assert body["finish_reason"] == "stop"


def answering_server(kind: str) -> FakeServer:
    """A server that streams ANSWER: 12 prompt tokens, one completion token per logprob."""
    server: FakeServer = FakeOllama() if kind == "ollama" else FakeOpenAI()
    if kind == "ollama":
        script(server, PIECES, prompt_eval_count=12, eval_count=len(ALL_LOGPROBS))
    else:
        script(server, PIECES, prompt_tokens=12, completion_tokens=len(ALL_LOGPROBS))
    return server


def run_app(tmp_path: Path, llm: dict[str, Any]) -> TestClient:
    return TestClient(create_app(make_settings(tmp_path, llm=llm)))


@pytest.mark.parametrize("kind", PROVIDERS)
def test_api_chat_answers_from_the_server(tmp_path: Path, kind: str) -> None:
    server = answering_server(kind)
    # The OpenAI app names no model: the server's first model is used.
    llm = llm_settings(kind, "", **({"model": ""} if kind == "openai" else {}))
    with serve(server):
        llm["base_url"] = server.url
        with run_app(tmp_path, llm) as client:
            api = Api(client)
            headers = api.setup_admin()
            r = chat(api, headers, "Say hello to the world.")
            assert r.status_code == 200, r.text
            check_answer(r.json(), "tiny" if kind == "ollama" else "m1")
            [item] = history(api, headers)
            assert item["response"] == ANSWER and item["query"] == "Say hello to the world."

    [body] = server.bodies(chat_path(server))
    sent = body["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[1]["content"] == "Say hello to the world."
    assert sent[0]["content"] == make_settings(tmp_path).llm.system_prompt
    if kind == "ollama":
        assert body["options"]["num_ctx"] == CONTEXT_WINDOW
        assert body["options"]["num_predict"] == 64
        assert body["options"]["temperature"] == 0.2
    else:
        assert body["stream"] is True and body["max_tokens"] == 64 and body["model"] == "m1"


@pytest.mark.parametrize("kind", PROVIDERS)
def test_api_chat_stream_sends_deltas_then_done(tmp_path: Path, kind: str) -> None:
    server = answering_server(kind)
    with serve(server), run_app(tmp_path, llm_settings(kind, server.url)) as client:
        api = Api(client)
        headers = api.setup_admin()
        r = api.client.post(
            "/api/v1/conversation/chat/stream", json={"message": "Hi"}, headers=headers
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = sse_frames(r.text)
        events = [e for e, _ in frames]
        assert events == ["delta"] * len(PIECES) + ["done"]
        assert [d["text"] for _, d in frames[:-1]] == [t for t, _ in PIECES]
        done = frames[-1][1]
        check_answer(done, "tiny" if kind == "ollama" else "m1")
        [item] = history(api, headers)
        assert item["response"] == ANSWER and item["session_id"] == done["session_id"]

        # The non-streaming answer has exactly the same fields.
        plain = chat(api, headers, "Hi again", session_id=done["session_id"])
        assert plain.status_code == 200
        assert set(plain.json()) == set(done)
        assert plain.json()["turn_id"] != done["turn_id"]


def test_api_second_turn_sends_history_as_separate_roles(tmp_path: Path) -> None:
    server = FakeOllama()
    script(server, PIECES)
    with serve(server), run_app(tmp_path, llm_settings("ollama", server.url)) as client:
        api = Api(client)
        headers = api.setup_admin()
        first = chat(api, headers, "First question")
        assert first.status_code == 200
        second = chat(api, headers, "Second question", session_id=first.json()["session_id"])
        assert second.status_code == 200
    bodies = server.bodies("/api/chat")
    assert len(bodies) == 2
    assert [(m["role"], m["content"]) for m in bodies[1]["messages"][1:]] == [
        ("user", "First question"),
        ("assistant", ANSWER),
        ("user", "Second question"),
    ]


FAILURES = [
    ("down", 503, "provider_unavailable"),
    ("http500", 502, "provider_error"),
    ("slow", 504, "provider_timeout"),
    ("empty", 502, "empty_output"),
    ("truncated", 502, "provider_error"),
]


@pytest.mark.parametrize("kind", PROVIDERS)
@pytest.mark.parametrize(("failure", "status", "code"), FAILURES)
def test_api_provider_failures_map_to_status_and_store_nothing(
    tmp_path: Path, kind: str, failure: str, status: int, code: str
) -> None:
    server: FakeServer = FakeOllama() if kind == "ollama" else FakeOpenAI()
    if failure == "http500":
        server.status = 500
        server.error_body = (
            {"error": "boom: out of memory"}
            if kind == "ollama"
            else {"error": {"message": "boom: out of memory"}}
        )
    elif failure == "slow":
        script(server, PIECES)
        server.delay_s = 3.0
    elif failure == "empty":  # only whitespace, then a proper end
        script(server, [(" ", [-0.1]), ("\n", [-0.2])])
    elif failure == "truncated":
        if isinstance(server, FakeOllama):
            server.chat_lines = list(ollama_answer(PIECES, done=False))
        else:
            assert isinstance(server, FakeOpenAI)
            server.chunks, server.send_done = list(openai_answer(PIECES)), False

    with serve(server), refused_url() as closed:
        url = closed if failure == "down" else server.url
        with run_app(tmp_path, llm_settings(kind, url, timeout_s=0.5)) as client:
            api = Api(client)
            headers = api.setup_admin()
            started = time.monotonic()
            r = chat(api, headers, "Hello?")
            assert time.monotonic() - started < 2.5
            assert r.status_code == status, r.text
            body = r.json()
            assert set(body) == {"detail", "code"}
            assert body["code"] == code and body["detail"]
            if failure == "http500":
                assert "boom: out of memory" in body["detail"]
            assert history(api, headers) == []
            if failure in ("down", "http500", "slow"):
                # Failing before the first token: the stream route answers the same status.
                s = api.client.post(
                    "/api/v1/conversation/chat/stream", json={"message": "Hello?"}, headers=headers
                )
                assert s.status_code == status and s.json()["code"] == code
                assert history(api, headers) == []
            ready = api.client.get("/ready")
            assert ready.status_code == (503 if failure == "down" else 200)
    if failure != "down":
        assert len(server.bodies(chat_path(server))) >= 1
