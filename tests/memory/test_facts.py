"""Fact memories: schema-constrained extraction, temporal validity, visible failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mongars.llm.base import ChatMessage, Delta, GenerationParams
from mongars.memory.facts import FACT_SCHEMA, INSTRUCTION, parse_facts
from tests.conftest import Api
from tests.fakes import ScriptedLLM


def facts_json(*pairs: tuple[str, str]) -> str:
    return json.dumps({"facts": [{"subject": s, "text": t} for s, t in pairs]})


def wait_for(api: Api, path: str, headers: dict[str, str], check: Callable[[Any], bool]) -> Any:
    deadline = time.time() + 20
    while True:
        body = api.client.get(path, headers=headers).json()
        if check(body):
            return body
        assert time.time() < deadline, body
        time.sleep(0.1)


def test_a_newer_fact_closes_the_older_one_without_deleting_it(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    llm = ScriptedLLM(
        replies=[
            "Nice!",
            facts_json(("home city", "The user lives in Lyon.")),
            "Congrats on the move!",
            facts_json(("home city", "The user lives in Montreal.")),
        ]
    )
    api = api_factory(provider=llm, embedder=embedder, memory={"enabled": True, "facts": True})
    headers = api.setup_admin()
    api.client.post(
        "/api/v1/conversation/chat", json={"message": "I live in Lyon."}, headers=headers
    )
    wait_for(api, "/api/v1/memory/facts", headers, lambda b: len(b) == 1)
    api.client.post(
        "/api/v1/conversation/chat", json={"message": "I just moved to Montreal!"}, headers=headers
    )
    current = wait_for(
        api, "/api/v1/memory/facts", headers, lambda b: len(b) == 1 and "Montreal" in b[0]["text"]
    )
    assert current[0]["subject"] == "home city" and current[0]["invalid_at"] is None
    history = api.client.get("/api/v1/memory/facts?include_past=true", headers=headers).json()
    assert [f["text"] for f in history] == [
        "The user lives in Montreal.",
        "The user lives in Lyon.",
    ]
    assert history[1]["invalid_at"] is not None  # closed, kept
    assert history[0]["source_ids"]  # linked to the turn it came from
    # extraction runs the model with the schema (grammar-constrained on llama.cpp)
    assert "Extract durable facts" in llm.calls[1][0].content


def test_failed_extractions_are_counted_and_listed(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    llm = ScriptedLLM(replies=["Sure.", "this is not json"])
    api = api_factory(provider=llm, embedder=embedder, memory={"enabled": True, "facts": True})
    headers = api.setup_admin()
    api.client.post(
        "/api/v1/conversation/chat", json={"message": "I have two cats."}, headers=headers
    )
    failures = wait_for(api, "/api/v1/memory/facts/failures", headers, lambda b: len(b) == 1)
    assert failures[0]["error"] and failures[0]["turn_id"]
    assert "memory_fact_extraction_failures_total" in api.client.get("/metrics").text
    assert api.client.get("/api/v1/memory/facts", headers=headers).json() == []


def test_facts_api_says_when_facts_are_off(api_factory: Callable[..., Api], embedder: Any) -> None:
    api = api_factory(embedder=embedder, memory={"enabled": True})
    headers = api.setup_admin()
    r = api.client.get("/api/v1/memory/facts", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "feature_disabled"


@pytest.mark.parametrize("raw", ['{"facts": "x"}', "[]", '{"facts": [1]}', "nope", ""])
def test_parse_facts_rejects_bad_shapes(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_facts(raw)


@pytest.mark.model
def test_the_real_model_answers_valid_json_under_the_grammar(model_path: Path) -> None:
    from mongars.llm.llamacpp import LlamaCppProvider

    async def go() -> str:
        llm = LlamaCppProvider(str(model_path), model_path.parent, context_window=1024, threads=2)
        await llm.start()
        try:
            messages = [
                ChatMessage("system", INSTRUCTION),
                ChatMessage("user", "User: My dog Rex is three.\nAssistant: Cute!"),
            ]
            params = GenerationParams(max_tokens=120, temperature=0.0, json_schema=FACT_SCHEMA)
            return "".join(
                [i.text async for i in llm.stream(messages, params) if isinstance(i, Delta)]
            )
        finally:
            await llm.close()

    raw = asyncio.run(go())
    data = json.loads(raw)  # always parses: the grammar allows nothing else
    assert isinstance(data["facts"], list)
    parse_facts(raw)
