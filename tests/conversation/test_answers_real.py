"""Answers from the real default model with memory on: no prompt scaffolding is ever stored,
and the context budget stays exact under the chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from mongars.conversation.hygiene import PATTERN
from tests.conftest import Api, make_settings
from tests.memory.test_memory_in_chat import wait_indexed

pytestmark = pytest.mark.model
CHAT = "/api/v1/conversation/chat"

FACTS = [
    "My sister Ada lives in Lyon and works as a baker.",
    "I am allergic to nuts, so I never eat pesto.",
    "My cat is called Miso and she is three years old.",
    "I work night shifts as a nurse at the Montreal General Hospital.",
    "My favourite colour is teal and I painted my kitchen in it.",
]
QUESTIONS = [
    "Where does my sister live?",
    "What is my sister's job?",
    "What am I allergic to?",
    "Can I eat pesto?",
    "What is my cat called?",
    "How old is my cat?",
    "Where do I work?",
    "What is my job?",
    "What is my favourite colour?",
    "What colour is my kitchen?",
    "Tell me something you remember about me.",
    "Suggest a dinner I can safely eat.",
    "Write a short poem about my cat.",
    "What should I buy my sister for her birthday?",
    "Give me a tip for sleeping after a night shift.",
    "Summarise what you know about my family.",
    "Which city should I visit to see my sister?",
    "What colour should I paint my bedroom?",
    "Remind me what I told you about food.",
    "Hello! How are you today?",
]


# 20 chats with the real model: past the default 300 s on a 2-core AVX2 machine
# (prompt evaluation about 200 tokens/s) while it was shared with another build.
@pytest.mark.timeout(900)
def test_twenty_real_chats_with_memory_store_no_scaffolding(
    tmp_path: Path, model_path: Path, embedder: Any
) -> None:
    settings = make_settings(
        tmp_path,
        llm={"model_path": str(model_path), "max_tokens": 48, "context_window": 2048},
        memory={"enabled": True},
    )
    with TestClient(create_app(settings, embedder=embedder)) as client:
        api = Api(client)
        headers = api.setup_admin()
        for fact in FACTS:
            assert client.post(CHAT, json={"message": fact}, headers=headers).status_code == 200
        wait_indexed(api, len(FACTS))
        recalled = 0
        for question in QUESTIONS:  # each in a new thread: only memory connects them
            r = client.post(CHAT, json={"message": question}, headers=headers)
            assert r.status_code == 200, r.text
            recalled += bool(r.json()["memory_ids"])
        assert recalled >= 15  # memory really was in the prompts
        stored = client.get(
            "/api/v1/conversation/history",
            params={"user_id": "admin", "limit": 100},
            headers=headers,
        ).json()
        assert len(stored) == len(FACTS) + len(QUESTIONS)
        for turn in stored:
            answer = turn["response"]
            assert answer.strip()
            assert not PATTERN.search(answer), answer  # labels, memory lines, tokens
            assert "<|im_" not in answer and "User:" not in answer and "</memory>" not in answer


def test_the_budget_is_exact_under_the_template(tmp_path: Path, model_path: Path) -> None:
    """A long thread is trimmed to fit the window as the template renders it; a message
    that cannot fit alone is a 413."""
    settings = make_settings(
        tmp_path,
        llm={"model_path": str(model_path), "max_tokens": 32, "context_window": 512},
    )
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        headers = api.setup_admin()
        words = " ".join(f"word{i}" for i in range(60))
        for _ in range(6):
            r = client.post(CHAT, json={"message": words, "session_id": "t"}, headers=headers)
            assert r.status_code == 200, r.text
            used = r.json()["usage"]["prompt_tokens"]
            assert used <= 512 - 32  # counted on the rendered prompt, never over
        too_long = " ".join(f"word{i}" for i in range(400))
        r = client.post(CHAT, json={"message": too_long}, headers=headers)
        assert r.status_code == 413 and "limit is" in r.json()["detail"]
