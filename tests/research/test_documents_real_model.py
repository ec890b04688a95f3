"""Through the real embedded model: an uploaded document's passage reaches the real
prompt (its tokens counted by the real tokenizer) and the answer cites it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from tests.conftest import Api, make_settings
from tests.research.test_documents_api import GUIDE

pytestmark = pytest.mark.model


def test_real_model_answer_cites_the_uploaded_document(
    tmp_path: Path, model_path: Path, embedder: Any
) -> None:
    settings = make_settings(
        tmp_path,
        llm={
            "model_path": str(model_path),
            "temperature": 0.0,
            "max_tokens": 24,
            "context_window": 1024,
        },
        research={"documents": True},
    )
    with TestClient(create_app(settings, embedder=embedder)) as client:
        api = Api(client)
        admin = api.setup_admin()
        r = client.post("/api/v1/documents", files={"file": ("heron.md", GUIDE)}, headers=admin)
        assert r.status_code == 201, r.text
        r = client.post(
            "/api/v1/conversation/chat",
            json={"message": "What is the code name of the Heron backups?"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["response"].strip()
        assert body["citations"] and "BLUE-HERON-42" in body["citations"][0]["excerpt"]
        # the passage was in the real prompt: it cost real tokens
        assert body["usage"]["prompt_tokens"] > 60
