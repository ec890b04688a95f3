"""Through the real embedded model: a real answer is rated and corrected by its user."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from tests.conftest import Api, make_settings

pytestmark = pytest.mark.model


def test_rate_and_correct_a_real_answer(tmp_path: Path, model_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        llm={"model_path": str(model_path), "temperature": 0.0, "max_tokens": 16},
    )
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        headers = api.setup_admin()
        r = client.post(
            "/api/v1/conversation/chat", json={"message": "What is 2 + 2?"}, headers=headers
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["response"].strip()
        url = f"/api/v1/conversation/turns/{answer['turn_id']}/feedback"
        body = {"rating": "down", "correction": "2 + 2 = 4.", "comment": "just the number"}
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 200, r.text
        [item] = client.get(
            f"/api/v1/threads/{answer['session_id']}/messages", headers=headers
        ).json()["items"]
        assert item["response"] == answer["response"]
        assert item["feedback"] == {"rating": "down", "correction": "2 + 2 = 4."}
        [row] = client.get("/api/v1/memory/export", headers=headers).json()["feedback"]
        assert row["comment"] == "just the number"
