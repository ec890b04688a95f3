"""Documents in chat: passages reach the prompt numbered, the answer's citations point at
the right document and chunk (plain and streamed), and questions nothing covers become
knowledge gaps; with web research enabled, a bounded research step fetches pages from a
local site (via a local SearxNG), ingests them, and the answer cites them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Api, LiveApi
from tests.conversation.test_chat_api import sse_events
from tests.fakes import ScriptedLLM
from tests.research.test_documents_api import GUIDE, upload
from tests.research.webserver import Site, serve_site

CHAT = "/api/v1/conversation/chat"
GAPS = "/api/v1/research/gaps"


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM(replies=["The code name is in [1]."])


@pytest.fixture
def docs_api(api_factory: Callable[..., Api], embedder: Any, llm: ScriptedLLM) -> Api:
    return api_factory(provider=llm, embedder=embedder, research={"documents": True})


def test_answer_cites_the_passage_it_was_given(docs_api: Api, llm: ScriptedLLM) -> None:
    admin = docs_api.setup_admin()
    doc = upload(docs_api, admin, "heron.md", GUIDE)["document"]
    r = docs_api.client.post(CHAT, json={"message": "What is the backup code name?"}, headers=admin)
    assert r.status_code == 200, r.text
    citations = r.json()["citations"]
    assert citations and citations[0]["n"] == 1
    first = citations[0]
    assert first["document_id"] == doc["id"] and first["path"] == "heron.md"
    assert "BLUE-HERON-42" in first["excerpt"] and first["section"].endswith("Backups")
    prompt = "\n".join(m.content for m in llm.calls[-1])
    assert "[1] Heron storage guide (heron.md)" in prompt and "BLUE-HERON-42" in prompt
    # the user's message is stored as sent; the sources were context only
    history = docs_api.client.get(
        "/api/v1/conversation/history", params={"user_id": "admin"}, headers=admin
    ).json()
    assert history[0]["query"] == "What is the backup code name?"

    with docs_api.client.stream(
        "POST", f"{CHAT}/stream", json={"message": "When does compaction run?"}, headers=admin
    ) as s:
        events = sse_events(s.read().decode())
    done = [data for name, data in events if name == "done"]
    assert done and any("02:00" in c["excerpt"] for c in done[0]["citations"])


def test_a_document_sharing_only_a_word_is_not_cited(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    upload(docs_api, admin, "heron.md", GUIDE)  # mentions "budget" (compaction budget)
    r = docs_api.client.post(
        CHAT,
        json={"message": "How should I plan my family budget for the holidays?"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["citations"] == []


def test_other_users_documents_are_never_cited(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    bob = docs_api.create_user(admin, "bob")
    upload(docs_api, admin, "heron.md", GUIDE)
    r = docs_api.client.post(CHAT, json={"message": "What is the backup code name?"}, headers=bob)
    assert r.status_code == 200 and r.json()["citations"] == []


def test_uncovered_question_is_a_gap_and_research_off_stays_local(
    docs_api: Api, llm: ScriptedLLM
) -> None:
    admin = docs_api.setup_admin()
    upload(docs_api, admin, "heron.md", GUIDE)
    question = "Who painted the ceiling of the Sistine Chapel?"
    r = docs_api.client.post(CHAT, json={"message": question}, headers=admin)
    assert r.status_code == 200 and r.json()["citations"] == []
    system = "\n".join(m.content for m in llm.calls[-1] if m.role == "system")
    assert "do not know" in system and "sistine" in system
    gaps = docs_api.client.get(GAPS, headers=admin).json()["items"]
    assert len(gaps) == 1 and gaps[0]["question"] == question
    assert gaps[0]["status"] == "open" and "sistine" in gaps[0]["missing_terms"]
    # covered questions and chit-chat are not gaps
    for message in ("What is the backup code name?", "thanks, that is all"):
        docs_api.client.post(CHAT, json={"message": message}, headers=admin)
    assert len(docs_api.client.get(GAPS, headers=admin).json()["items"]) == 1
    bob = docs_api.create_user(admin, "bob")
    assert docs_api.client.get(GAPS, headers=bob).json()["items"] == []
    assert docs_api.client.get(GAPS, params={"all": "true"}, headers=bob).status_code == 403
    everyone = docs_api.client.get(GAPS, params={"all": "true"}, headers=admin).json()
    assert [g["question"] for g in everyone["items"]] == [question]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


def test_research_fetches_ingests_and_cites(
    api_factory: Callable[..., Api], embedder: Any, site: Site
) -> None:
    site.reset()
    site.searx_body = json.dumps(
        {
            "results": [
                {"url": f"{site.url}/article.html", "title": "Iris", "content": "rainbow"},
                {"url": f"{site.url}/private/secret.html", "title": "Robots say no", "content": ""},
            ]
        }
    )
    llm = ScriptedLLM(replies=["Iris is the rainbow [1]."])
    api = api_factory(
        provider=llm,
        embedder=embedder,
        research={
            "documents": True,
            "web": True,
            "searxng_url": site.url,
            "allow_private_hosts": ["127.0.0.1"],
            "fetch_host_interval_s": 0,
        },
    )
    admin = api.setup_admin()
    question = "Who is the Greek messenger goddess personifying the rainbow?"
    r = api.client.post(CHAT, json={"message": question}, headers=admin)
    assert r.status_code == 200, r.text
    citations = r.json()["citations"]
    assert citations and citations[0]["url"] == f"{site.url}/article.html"
    assert citations[0]["collection"] == "research"
    assert "rainbow" in "\n".join(m.content for m in llm.calls[-1])
    assert "/private/secret.html" not in site.paths()  # robots.txt honoured
    gap = api.client.get(GAPS, headers=admin).json()["items"][0]
    assert gap["status"] == "researched"
    assert [s["url"] for s in gap["sources"]] == [f"{site.url}/article.html"]
    docs = api.client.get("/api/v1/documents", params={"collection": "research"}, headers=admin)
    assert [d["url"] for d in docs.json()["items"]] == [f"{site.url}/article.html"]
    stored = api.client.get(
        "/api/v1/conversation/history", params={"user_id": "admin"}, headers=admin
    ).json()
    assert stored[0]["query"] == question  # research is context, never the user's message


def test_research_failure_is_recorded_not_fatal(
    api_factory: Callable[..., Api], embedder: Any, site: Site
) -> None:
    site.reset()
    site.searx_status, site.searx_body = 500, "{}"
    api = api_factory(
        provider=ScriptedLLM(replies=["I do not know."]),
        embedder=embedder,
        research={
            "documents": True,
            "web": True,
            "searxng_url": site.url,
            "allow_private_hosts": ["127.0.0.1"],
        },
    )
    admin = api.setup_admin()
    r = api.client.post(CHAT, json={"message": "What is the capital of Atlantis?"}, headers=admin)
    assert r.status_code == 200 and r.json()["citations"] == []
    gap = api.client.get(GAPS, headers=admin).json()["items"][0]
    assert gap["status"] == "failed" and gap["error"]


def test_websocket_completed_event_carries_citations(
    live_factory: Callable[..., LiveApi], embedder: Any
) -> None:
    from tests.realtime.test_websocket import connect, is_type, until

    api = live_factory(
        provider=ScriptedLLM(replies=["See [1]."]), embedder=embedder, research={"documents": True}
    )
    admin = api.setup_admin()
    r = api.client.post("/api/v1/documents", files={"file": ("heron.md", GUIDE)}, headers=admin)
    assert r.status_code == 201, r.text
    ws = connect(api, admin)
    ws.send_json({"type": "chat.send", "message": "What is the backup code name?"})
    done = until(ws, is_type("chat.completed"))[-1]
    assert done["citations"] and "BLUE-HERON-42" in done["citations"][0]["excerpt"]
    assert done["citations"][0]["document_id"] == r.json()["document"]["id"]


def test_a_turn_embeds_its_message_once_for_memory_and_documents(
    api_factory: Callable[..., Api], embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["See [1]."]),
        embedder=embedder,
        memory={"enabled": True},
        research={"documents": True},
    )
    admin = api.setup_admin()
    upload(api, admin, "heron.md", GUIDE)
    asked: list[list[str]] = []
    real = embedder.embed

    async def counting(texts: Any) -> Any:
        asked.append(list(texts))
        return await real(texts)

    monkeypatch.setattr(embedder, "embed", counting)
    message = "What is the backup code name for Heron?"
    r = api.client.post(CHAT, json={"message": message}, headers=admin)
    assert r.status_code == 200 and r.json()["citations"]
    assert asked.count([message]) == 1  # memory's cached query vector serves documents too
