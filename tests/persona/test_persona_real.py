"""Through the real embedded model: a terse user's answers are measurably shorter."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from tests.conftest import Api, make_settings

pytestmark = pytest.mark.model

SEED = {
    "terse": ["Capital of France?", "Largest ocean?"],
    "verbose": [
        "I have been reading about how the weather works for a few weeks now and I would "
        "really love a thorough, detailed explanation of how clouds form, why some of them "
        "bring rain while others do not, and what meteorologists look at to predict storms.",
        "Could you also walk me through, step by step and with examples, how the seasons "
        "change over the year, why the days get longer in summer, and how all of that "
        "affects the plants and animals that live in different parts of the world?",
    ],
}
QUESTIONS = [
    "What is rain?",
    "Tell me a story about a dragon.",
    "Describe how a car engine works.",
    "Tell me about the history of Rome.",
]


def test_terse_user_gets_shorter_answers_than_verbose_user(
    tmp_path: Path, model_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        llm={
            "model_path": str(model_path),
            "temperature": 0.0,
            "max_tokens": 48,
            "context_window": 1024,
        },
        persona={"min_observations": 2, "terse_max_tokens": 10},
    )
    lengths: dict[str, list[int]] = {}
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        admin = api.setup_admin()
        for name, seed in SEED.items():
            headers = api.create_user(admin, name)
            for message in seed:  # the user's own style, measured from real turns
                r = client.post(
                    "/api/v1/conversation/chat", json={"message": message}, headers=headers
                )
                assert r.status_code == 200, r.text
            lengths[name] = []
            for question in QUESTIONS:  # the same questions for both users
                r = client.post(
                    "/api/v1/conversation/chat", json={"message": question}, headers=headers
                )
                assert r.status_code == 200, r.text
                assert r.json()["response"].strip()
                lengths[name].append(r.json()["usage"]["completion_tokens"])
            steering = client.get("/api/v1/profile", headers=headers).json()["steering"]
            budget = steering["budgets"].get("max_tokens", {}).get("value")
            assert budget == (10 if name == "terse" else None)
    assert max(lengths["terse"]) <= 10
    assert statistics.median(lengths["terse"]) < statistics.median(lengths["verbose"]), lengths
