"""The HTTP providers' resilience layer against real servers on loopback.

Several endpoints are rotated; one that keeps failing is skipped behind its circuit
breaker (half-open probe after the cool-down); failures before the first token are
retried with backoff, at least until ``Retry-After``; 409/503 scaling answers are
scaling events, not failures; a failure after the first token is never retried.
Metric values are read from the app's ``/metrics`` text or the Metrics object.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, aclosing, contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from mongars.app import create_app
from mongars.errors import ProviderError, ProviderUnavailable
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.llm.ollama import OllamaProvider
from mongars.llm.openai_compat import OpenAICompatProvider
from mongars.llm.outcomes import parse_retry_after
from mongars.llm.resilience import Policy
from mongars.observability.metrics import Metrics, create_metrics
from mongars.settings import Settings
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
from tests.web.test_console_http import login

PIECES: list[tuple[str, list[float]]] = [("Hel", [-0.1]), ("lo", [-0.2]), ("!", [-0.3])]
MESSAGES = [ChatMessage("user", "Say hello.")]
PARAMS = GenerationParams(max_tokens=16, temperature=0.0)
COOLDOWN_S = 0.4
POLICY = Policy(
    retries=3,
    backoff_initial_s=0.01,
    backoff_max_s=0.05,
    breaker_threshold=2,
    breaker_cooldown_s=COOLDOWN_S,
    retry_after_max_s=5.0,
)
BACKPRESSURE = {"error": "Request dropped due to backpressure (max_queued_requests=4)"}


def answering(kind: str = "ollama") -> FakeServer:
    if kind == "ollama":
        return FakeOllama(chat_lines=list(ollama_answer(PIECES)))
    return FakeOpenAI(chunks=list(openai_answer(PIECES)))


@contextmanager
def servers(*fakes: FakeServer) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(serve(f)).url for f in fakes]


def provider(
    urls: Sequence[str], kind: str = "ollama", metrics: Metrics | None = None, **policy: Any
) -> OllamaProvider | OpenAICompatProvider:
    p = Policy(**{**POLICY.__dict__, **policy})
    if kind == "ollama":
        return OllamaProvider(list(urls), "tiny", 2048, 2.0, policy=p, metrics=metrics)
    return OpenAICompatProvider(list(urls), "m1", 2048, 2.0, policy=p, metrics=metrics)


async def answer(llm: OllamaProvider | OpenAICompatProvider) -> list[StreamItem]:
    async with aclosing(llm.stream(MESSAGES, PARAMS)) as stream:
        return [item async for item in stream]


def text(items: Sequence[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, Delta))


def chats(fake: FakeServer) -> int:
    path = "/api/chat" if isinstance(fake, FakeOllama) else "/v1/chat/completions"
    return len(fake.bodies(path))


def metric(exposition: str | bytes, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    if isinstance(exposition, bytes):
        exposition = exposition.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def states(llm: OllamaProvider | OpenAICompatProvider) -> list[str]:
    return [s["state"] for s in llm.endpoint_states()]


# --- rotation and the breaker -------------------------------------------------------


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_requests_rotate_across_endpoints(kind: str) -> None:
    a, b = answering(kind), answering(kind)
    metrics = create_metrics()
    with servers(a, b) as urls:
        llm = provider(urls, kind, metrics)
        try:
            for _ in range(4):
                assert text(await answer(llm)) == "Hello!"
        finally:
            await llm.close()
    assert (chats(a), chats(b)) == (2, 2)
    for url in urls:
        labels = {"provider": kind, "endpoint": url}
        assert metric(metrics.render(), "llm_requests_total", outcome="ok", **labels) == 2
        assert metric(metrics.render(), "llm_request_duration_seconds_count", **labels) == 2
        assert metric(metrics.render(), "llm_breaker_state", **labels) == 0
    metrics.shutdown()


async def test_a_down_endpoint_is_skipped_once_its_breaker_opens() -> None:
    good = answering()
    metrics = create_metrics()
    with refused_url() as down, servers(good) as [up]:
        llm = provider([down, up], metrics=metrics)
        try:
            results = [text(await answer(llm)) for _ in range(6)]
            assert states(llm) == ["open", "closed"]
        finally:
            await llm.close()
    assert results == ["Hello!"] * 6  # no user request failed
    assert chats(good) == 6
    # The down endpoint was tried until its breaker opened (threshold 2), then skipped.
    down_labels = {"provider": "ollama", "endpoint": down}
    assert metric(metrics.render(), "llm_failures_total", outcome="failed", **down_labels) == 2
    assert metric(metrics.render(), "llm_breaker_state", **down_labels) == 2
    metrics.shutdown()


async def test_breaker_probes_after_the_cooldown_and_closes_on_recovery() -> None:
    flaky, good = answering(), answering()
    flaky.status, flaky.error_body = 500, {"error": "CUDA out of memory"}
    metrics = create_metrics()
    with servers(flaky, good) as urls:
        llm = provider(urls, metrics=metrics)
        try:
            for _ in range(4):
                assert text(await answer(llm)) == "Hello!"
            assert states(llm) == ["open", "closed"]
            asked = chats(flaky)
            assert asked == 2
            for _ in range(3):  # while open: not asked at all
                await answer(llm)
            assert chats(flaky) == asked

            # Cool-down over, still failing: one probe, and the breaker opens again.
            await asyncio.sleep(COOLDOWN_S + 0.1)
            for _ in range(3):
                assert text(await answer(llm)) == "Hello!"
            assert chats(flaky) == asked + 1
            assert states(llm) == ["open", "closed"]

            # Recovered: the next probe succeeds and the breaker closes.
            flaky.status = 200
            await asyncio.sleep(COOLDOWN_S + 0.1)
            for _ in range(4):
                assert text(await answer(llm)) == "Hello!"
            assert states(llm) == ["closed", "closed"]
            assert chats(flaky) == asked + 1 + 2  # the probe, then its turn in rotation
        finally:
            await llm.close()
    labels = {"provider": "ollama", "endpoint": urls[0]}
    assert metric(metrics.render(), "llm_breaker_state", **labels) == 0
    assert metric(metrics.render(), "llm_requests_total", outcome="ok", **labels) == 2
    assert metric(metrics.render(), "llm_failures_total", outcome="failed", **labels) == 3
    metrics.shutdown()


def test_all_endpoints_failing_fail_fast_with_a_clear_503(tmp_path: Path) -> None:
    with refused_url() as first, refused_url() as second:
        llm = {
            "provider": "ollama",
            "model": "tiny",
            "base_urls": f"{first},{second}",
            "timeout_s": 2.0,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "breaker_threshold": 2,
            "breaker_cooldown_s": 30,
        }
        with TestClient(create_app(make_settings(tmp_path, llm=llm))) as client:
            api = Api(client)
            headers = api.setup_admin()
            chat = {"message": "Hello?"}
            r = client.post("/api/v1/conversation/chat", json=chat, headers=headers)
            # Both endpoints failed twice: the last attempt's reason is given.
            assert r.status_code == 503 and "unreachable" in r.json()["detail"]
            started = time.monotonic()
            r = client.post("/api/v1/conversation/chat", json=chat, headers=headers)
            assert time.monotonic() - started < 0.5
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "provider_unavailable"
            assert r.json()["detail"].startswith("all 2 Ollama endpoints are failing")
            assert "next probe in 30 s" in r.json()["detail"]
            assert client.get("/api/v1/conversation/history", headers=headers).json() == []
            assert client.get("/ready").status_code == 503
            exposition = client.get("/metrics").text
            # The console's model page shows each endpoint's breaker.
            assert login(client).status_code == 303
            page = client.get("/admin/model").text
            assert all(f"<code>{url}</code></th><td>open</td>" in page for url in (first, second))
    for url in (first, second):
        labels = {"provider": "ollama", "endpoint": url}
        assert metric(exposition, "llm_breaker_state", **labels) == 2
        assert metric(exposition, "llm_requests_total", outcome="failed", **labels) == 2


async def test_ready_when_one_endpoint_answers() -> None:
    with refused_url() as down, servers(answering("openai")) as [up]:
        both, dead = provider([down, up], "openai"), provider([down], "openai")
        try:
            assert await both.ready() is True
            assert await dead.ready() is False
        finally:
            await both.close()
            await dead.close()


# --- Retry-After and scaling -----------------------------------------------------------


async def test_retry_after_is_honoured_before_the_retry() -> None:
    fake = answering()
    fake.queued = [(429, {"error": "slow down"}, {"Retry-After": "1"})]
    metrics = create_metrics()
    with servers(fake) as urls:
        llm = provider(urls, metrics=metrics)
        try:
            assert text(await answer(llm)) == "Hello!"
        finally:
            await llm.close()
    first, second = fake.requests
    assert second.at - first.at >= 1.0
    labels = {"provider": "ollama", "endpoint": urls[0]}
    assert metric(metrics.render(), "llm_requests_total", outcome="rate_limited", **labels) == 1
    assert metric(metrics.render(), "llm_failures_total", **labels) == 0
    metrics.shutdown()


async def test_retry_after_is_capped() -> None:
    fake = answering()
    fake.queued = [(429, {"error": "slow down"}, {"Retry-After": "3600"})]
    with servers(fake) as urls:
        llm = provider(urls, retry_after_max_s=0.3)
        try:
            started = time.monotonic()
            assert text(await answer(llm)) == "Hello!"
            assert 0.3 <= time.monotonic() - started < 2
        finally:
            await llm.close()


def test_retry_after_as_seconds_or_http_date() -> None:
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(formatdate(now + 20, usegmt=True), now=now) == pytest.approx(20, abs=1)
    assert parse_retry_after(formatdate(now - 20, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_scaling_answers_are_retried_and_never_open_the_breaker(kind: str) -> None:
    fake = answering(kind)
    fake.queued = [
        (503, BACKPRESSURE, {}),
        (409, {"error": "deployment is scaling: no replica ready"}, {}),
        (503, {"error": "unavailable"}, {"Retry-After": "0"}),
    ]  # three in a row, above the breaker's threshold of 2
    metrics = create_metrics()
    with servers(fake) as urls:
        llm = provider(urls, kind, metrics)
        try:
            assert text(await answer(llm)) == "Hello!"
            assert llm.endpoint_states()[0] | {"probe_in_s": 0} == {
                "endpoint": urls[0],
                "state": "closed",
                "failures": 0,
                "probe_in_s": 0,
            }
        finally:
            await llm.close()
    labels = {"provider": kind, "endpoint": urls[0]}
    assert metric(metrics.render(), "llm_scaling_events_total", **labels) == 3
    assert metric(metrics.render(), "llm_requests_total", outcome="scaling", **labels) == 3
    assert metric(metrics.render(), "llm_failures_total", **labels) == 0
    metrics.shutdown()


async def test_a_scaling_endpoint_is_left_for_another_without_waiting() -> None:
    busy, free = answering(), answering()
    busy.status, busy.error_body, busy.error_headers = 503, BACKPRESSURE, {"Retry-After": "10"}
    with servers(busy, free) as urls:
        llm = provider(urls)
        try:
            started = time.monotonic()
            for _ in range(3):
                assert text(await answer(llm)) == "Hello!"
            assert time.monotonic() - started < 2  # not 10 s: the other endpoint answered
        finally:
            await llm.close()
    assert chats(busy) == 1 and chats(free) == 3


async def test_plain_503_is_a_failure_and_409_without_scaling_sign_a_rejection() -> None:
    fake = answering()
    fake.queued = [(503, {"error": "model is loading"}, {})]
    metrics = create_metrics()
    with servers(fake) as urls:
        llm = provider(urls, metrics=metrics)
        try:
            assert text(await answer(llm)) == "Hello!"  # retried: it was a failure
            fake.queued = [(409, {"error": "conflict"}, {})]
            with pytest.raises(ProviderError, match="HTTP 409: conflict"):
                await answer(llm)  # not retried
        finally:
            await llm.close()
    assert chats(fake) == 3
    labels = {"provider": "ollama", "endpoint": urls[0]}
    assert metric(metrics.render(), "llm_failures_total", outcome="failed", **labels) == 1
    assert metric(metrics.render(), "llm_failures_total", outcome="rejected", **labels) == 1
    assert metric(metrics.render(), "llm_scaling_events_total", **labels) == 0


# --- the first-token boundary ----------------------------------------------------------


async def test_a_failure_after_the_first_token_is_not_retried() -> None:
    dying, spare = answering(), answering()
    dying.drop_after = 2  # two lines ("Hel", "lo"), then the connection drops
    metrics = create_metrics()
    items: list[StreamItem] = []
    with servers(dying, spare) as urls:
        llm = provider(urls, metrics=metrics)
        try:
            with pytest.raises((ProviderError, ProviderUnavailable)):
                async with aclosing(llm.stream(MESSAGES, PARAMS)) as stream:
                    async for item in stream:
                        items.append(item)
        finally:
            await llm.close()
    assert text(items) == "Hello" and not any(isinstance(i, Finish) for i in items)
    assert (chats(dying), chats(spare)) == (1, 0)
    labels = {"provider": "ollama", "endpoint": urls[0]}
    assert metric(metrics.render(), "llm_failures_total", outcome="failed", **labels) == 1


def test_api_stream_ends_with_an_error_event_and_stores_nothing(tmp_path: Path) -> None:
    dying, spare = answering(), answering()
    dying.drop_after = 2
    with servers(dying, spare) as urls:
        llm = {"provider": "ollama", "model": "tiny", "base_urls": urls, "timeout_s": 2.0}
        with TestClient(create_app(make_settings(tmp_path, llm=llm))) as client:
            api = Api(client)
            headers = api.setup_admin()
            r = client.post(
                "/api/v1/conversation/chat/stream", json={"message": "Hi"}, headers=headers
            )
            assert r.status_code == 200
            events = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
            assert events[0] == "delta" and events[-1] == "error"
            assert "done" not in events
            assert client.get("/api/v1/conversation/history", headers=headers).json() == []
            # The next turn goes to the other endpoint and completes.
            ok = client.post("/api/v1/conversation/chat", json={"message": "Hi"}, headers=headers)
            assert ok.status_code == 200 and ok.json()["response"] == "Hello!"
    assert (chats(dying), chats(spare)) == (1, 1)


# --- configuration ---------------------------------------------------------------------


def test_base_urls_from_the_environment_merge_with_base_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONGARS_LLM__PROVIDER", "ollama")
    monkeypatch.setenv("MONGARS_LLM__BASE_URL", "http://a:11434/")
    monkeypatch.setenv("MONGARS_LLM__BASE_URLS", "http://b:11434, http://a:11434")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.llm.endpoints == ["http://a:11434", "http://b:11434"]
    monkeypatch.setenv("MONGARS_LLM__BASE_URLS", '["http://c:1", "https://d"]')
    assert Settings(_env_file=None).llm.endpoints == [  # type: ignore[call-arg]
        "http://a:11434",
        "http://c:1",
        "https://d",
    ]


@pytest.mark.parametrize("provider_name", ["ollama", "openai"])
def test_no_endpoint_is_refused_at_start(tmp_path: Path, provider_name: str) -> None:
    with pytest.raises(ValidationError, match="needs at least one endpoint: set MONGARS_LLM__"):
        make_settings(tmp_path, llm={"provider": provider_name, "model": "m"})


@pytest.mark.parametrize(
    "url", ["localhost:11434", "ftp://host/x", "http://", "http://host:notaport", "//host:1"]
)
def test_a_malformed_endpoint_url_is_refused_and_named(tmp_path: Path, url: str) -> None:
    llm = {"provider": "ollama", "model": "tiny", "base_urls": ["http://ok:1", url]}
    with pytest.raises(ValidationError, match="is not a valid endpoint URL") as info:
        make_settings(tmp_path, llm=llm)
    assert repr(url) in str(info.value)
    with pytest.raises(ValidationError, match="is not a valid endpoint URL"):
        make_settings(tmp_path, llm={"provider": "openai", "base_url": url})
    with pytest.raises(ValueError, match="not an http"):
        OllamaProvider([url], "tiny", 2048, 2.0)
    with pytest.raises(ValueError, match="no endpoint"):
        OllamaProvider([], "tiny", 2048, 2.0)
