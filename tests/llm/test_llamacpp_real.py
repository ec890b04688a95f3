"""The embedded llama.cpp provider with the real Gemma 3 270M model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mongars.app import create_app
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams
from mongars.llm.llamacpp import STOP_SEQUENCES, EdgeWhitespace, LlamaCppProvider, render_prompt
from tests.conftest import Api, make_settings

pytestmark = pytest.mark.model

MESSAGES = [
    ChatMessage("system", "The following is a conversation with a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]
GREEDY = GenerationParams(max_tokens=48, temperature=0.0, seed=0)


@pytest.fixture
async def provider(model_path: Path) -> AsyncIterator[LlamaCppProvider]:
    llm = LlamaCppProvider(str(model_path), model_path.parent, context_window=1024, threads=2)
    await llm.start()
    yield llm
    await llm.close()


async def generate(llm: LlamaCppProvider) -> tuple[str, list[float], Finish]:
    parts: list[str] = []
    logprobs: list[float] = []
    finish = None
    async for item in llm.stream(MESSAGES, GREEDY):
        if isinstance(item, Delta):
            parts.append(item.text)
            logprobs.extend(item.logprobs)
        else:
            finish = item
    assert finish is not None
    return "".join(parts), logprobs, finish


async def test_greedy_generation_is_deterministic_and_ends_at_turn_end(
    provider: LlamaCppProvider,
) -> None:
    first, logprobs, finish = await generate(provider)
    second, _, _ = await generate(provider)
    assert first.strip() and first == second
    assert finish.finish_reason == "stop"  # ended by a stop sequence, not max_tokens
    assert not any(stop.strip() in first for stop in STOP_SEQUENCES)
    assert first == first.strip()
    assert logprobs and all(lp <= 0 for lp in logprobs)
    assert finish.completion_tokens >= len(logprobs)
    expected_prompt = provider.llama.tokenize(render_prompt(MESSAGES).encode(), add_bos=True)
    assert finish.prompt_tokens == len(expected_prompt)
    # the same answer llama-cpp-python's own completion API gives
    reference = provider.llama.create_completion(
        render_prompt(MESSAGES), max_tokens=48, temperature=0.0, stop=STOP_SEQUENCES
    )
    assert first == reference["choices"][0]["text"].strip()


async def test_token_counts_come_from_the_model_tokenizer(provider: LlamaCppProvider) -> None:
    counts = await provider.message_tokens([ChatMessage("user", "hello world " * 50)])
    direct = provider.llama.tokenize(b"User: " + b"hello world " * 50 + b"\n", add_bos=False)
    assert counts == [len(direct)]
    assert counts[0] > 100  # not a word count


async def test_closing_the_stream_stops_generation(provider: LlamaCppProvider) -> None:
    params = GenerationParams(max_tokens=400, temperature=0.0)
    story = [ChatMessage("user", "Write a very long story about dragons.")]
    stream = provider.stream(story, params)
    async for item in stream:
        assert isinstance(item, Delta)
        break
    await stream.aclose()
    # the engine is free again: the next generation runs (it would deadlock otherwise)
    text, _, _ = await generate(provider)
    assert text


def test_edge_whitespace_keeps_deltas_equal_to_answer() -> None:
    edges = EdgeWhitespace()
    out = [edges.feed(t) for t in ["  ", " Hello", " ", "world", "\n", "\n"]]
    assert "".join(out) == "Hello world"


def test_chat_through_the_real_model_end_to_end(tmp_path: Path, model_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = make_settings(
        tmp_path,
        llm={
            "model_path": str(model_path),
            "temperature": 0.0,
            "max_tokens": 40,
            "context_window": 1024,
        },
    )
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        headers = api.setup_admin()
        assert client.get("/ready").json()["checks"] == {"database": True, "model": True}
        r = client.post(
            "/api/v1/conversation/chat",
            json={"message": "What is the capital of France?"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["response"].strip()
        assert 0.0 < body["confidence"] <= 1.0
        assert body["model"] == model_path.name
        assert body["usage"]["prompt_tokens"] > 10
        with client.stream(
            "POST",
            "/api/v1/conversation/chat/stream",
            json={"message": "What is the capital of France?"},
            headers=headers,
        ) as s:
            text = s.read().decode()
        assert text.count("event: delta") >= 1 and "event: done" in text
        # a message too large for the real context window is a 413 naming the limit
        r = client.post(
            "/api/v1/conversation/chat", json={"message": "lorem ipsum " * 1500}, headers=headers
        )
        assert r.status_code == 413 and "limit is" in r.json()["detail"]


def test_stop_matcher_holds_back_partial_stop_sequences() -> None:
    from mongars.llm.llamacpp import StopMatcher

    m = StopMatcher(["\nUser:", "<end_of_turn>"])
    assert m.feed("Hello") == ("Hello", False)
    assert m.feed(" world\nUs") == (" world", False)  # "\nUs" may start "\nUser:"
    assert m.feed("eful") == ("\nUseful", False)  # it did not
    assert m.feed(" end\nUser: next") == (" end", True)
    m2 = StopMatcher(["\nUser:"])
    assert m2.feed("a\n") == ("a", False)
    assert m2.flush() == "\n"


def test_log_softmax_matches_float64_reference() -> None:
    import numpy as np

    from mongars.llm.llamacpp import LogSoftmax

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal(262_144) * 8).astype(np.float32)
    ref = logits.astype(np.float64)
    ref = ref - ref.max()
    ref = ref - np.log(np.exp(ref).sum())
    fn = LogSoftmax(logits.size)
    for token in (0, int(logits.argmax()), 12345):
        assert fn(logits, token) == pytest.approx(ref[token], abs=1e-4)
