"""Documents through the HTTP API with the real MiniLM embedder, on SQLite and PostgreSQL:
upload, re-ingest, replace, list, search, delete, limits and bad files, isolation between
users, shared collections, and the rag-context contract field by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.research import docgen

D = "/api/v1/documents"
GUIDE = b"""# Heron storage guide

Heron keeps every object in immutable segments.

## Compaction

Compaction merges small segments into larger ones every night at 02:00.
The compaction budget is 40 megabytes per second so that readers are not starved.

## Backups

Backups are written to the cold tier with the code name BLUE-HERON-42.
"""


@pytest.fixture
def docs_api(api_factory: Callable[..., Api], embedder: Any, backend: dict[str, Any]) -> Api:
    return api_factory(
        provider=ScriptedLLM(replies=["Answer."]),
        embedder=embedder,
        research={"documents": True},
        **backend,
    )


def upload(
    api: Api,
    who: dict[str, str],
    name: str,
    data: bytes,
    collection: str = "notes",
    status: int = 201,
    **form: Any,
) -> dict[str, Any]:
    r = api.client.post(
        D, files={"file": (name, data)}, data={"collection": collection, **form}, headers=who
    )
    assert r.status_code == status, r.text
    return dict(r.json())


def search(api: Api, who: dict[str, str], query: str, **body: Any) -> list[dict[str, Any]]:
    r = api.client.post(f"{D}/search", json={"query": query, **body}, headers=who)
    assert r.status_code == 200, r.text
    return list(r.json()["passages"])


def test_upload_search_reingest_replace_delete(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    first = upload(docs_api, admin, "heron.md", GUIDE)
    assert first["status"] == "created"
    doc = first["document"]
    assert doc["format"] == "markdown" and doc["title"] == "Heron storage guide"
    assert doc["chunks"] >= 1 and doc["collection"] == "notes"

    hits = search(docs_api, admin, "what is the backup code name?")
    assert hits and "BLUE-HERON-42" in hits[0]["text"]
    assert hits[0]["document_id"] == doc["id"] and hits[0]["section"].endswith("Backups")

    again = upload(docs_api, admin, "heron.md", GUIDE, status=200)
    assert again["status"] == "unchanged" and again["document"]["id"] == doc["id"]

    changed = GUIDE.replace(b"BLUE-HERON-42", b"GREEN-EGRET-7")
    replaced = upload(docs_api, admin, "heron.md", changed, status=200)
    assert replaced["status"] == "updated" and replaced["document"]["id"] == doc["id"]
    texts = " ".join(h["text"] for h in search(docs_api, admin, "backup code name"))
    assert "GREEN-EGRET-7" in texts and "BLUE-HERON-42" not in texts

    listed = docs_api.client.get(D, headers=admin).json()
    assert [d["id"] for d in listed["items"]] == [doc["id"]] and listed["next_cursor"] is None
    cols = docs_api.client.get("/api/v1/collections", headers=admin).json()
    assert [(c["name"], c["documents"], c["shared"]) for c in cols] == [("notes", 1, False)]

    assert docs_api.client.delete(f"{D}/{doc['id']}", headers=admin).status_code == 204
    assert docs_api.client.get(f"{D}/{doc['id']}", headers=admin).status_code == 404
    assert search(docs_api, admin, "backup code name") == []


def test_pdf_pages_and_pagination(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    data = docgen.pdf(
        ["Chapter one is about the weather on Mars.", "The rover battery lasts 19 sols."]
    )
    doc = upload(docs_api, admin, "rover.pdf", data)["document"]
    assert doc["format"] == "pdf" and doc["pages"] == 2
    hit = search(docs_api, admin, "how long does the rover battery last")[0]
    assert hit["page"] == 2 and "19 sols" in hit["text"]
    for n in range(3):
        upload(docs_api, admin, f"n{n}.txt", f"Note number {n} about tulips.".encode())
    page1 = docs_api.client.get(D, params={"limit": 2}, headers=admin).json()
    page2 = docs_api.client.get(
        D, params={"limit": 2, "cursor": page1["next_cursor"]}, headers=admin
    ).json()
    ids = [d["id"] for d in page1["items"] + page2["items"]]
    assert len(ids) == 4 == len(set(ids)) and ids == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    ("name", "make", "status", "reason"),
    [
        ("secret.pdf", docgen.encrypted_pdf, 422, "encrypted_pdf"),
        ("broken.pdf", docgen.corrupt_pdf, 422, "corrupt_pdf"),
        ("data.txt", docgen.binary_as_text, 422, "binary_content"),
        ("empty.md", docgen.whitespace_file, 422, "empty_document"),
        ("scan.pdf", docgen.blank_pdf, 422, "empty_document"),
        ("../../etc/passwd", lambda: b"hello", 422, "path"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    docs_api: Api, name: str, make: Callable[[], bytes], status: int, reason: str
) -> None:
    admin = docs_api.setup_admin()
    r = docs_api.client.post(
        D, files={"file": (name, make())}, data={"collection": "bad"}, headers=admin
    )
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert docs_api.client.get(D, headers=admin).json()["items"] == []


def test_huge_line_and_unicode_ingest(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    doc = upload(docs_api, admin, "line.txt", docgen.huge_line(200_000))["document"]
    assert doc["chunks"] > 10
    upload(
        docs_api,
        admin,
        "fr.md",
        "# Crème brûlée\n\nLa recette du chef 🍮 utilise 6 jaunes d'œufs.".encode(),
    )
    assert "œufs" in search(docs_api, admin, "recette crème brûlée")[0]["text"]


def test_size_limit_and_bad_form(api_factory: Callable[..., Api], embedder: Any) -> None:
    api = api_factory(embedder=embedder, research={"documents": True, "max_upload_bytes": 4096})
    admin = api.setup_admin()
    r = api.client.post(D, files={"file": ("big.txt", b"word " * 2000)}, headers=admin)
    assert r.status_code == 413, r.text
    r = api.client.post(D, data={"collection": "x"}, headers=admin)  # no file
    assert r.status_code == 422
    r = api.client.post(
        D, files={"file": ("a.txt", b"hi there")}, data={"collection": "<script>"}, headers=admin
    )
    assert r.status_code == 422


def test_users_are_isolated_and_shared_collections_are_for_everyone(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    bob = docs_api.create_user(admin, "bob")
    mine = upload(docs_api, admin, "heron.md", GUIDE)["document"]
    assert search(docs_api, bob, "backup code name") == []
    assert docs_api.client.get(f"{D}/{mine['id']}", headers=bob).status_code == 404
    assert docs_api.client.delete(f"{D}/{mine['id']}", headers=bob).status_code == 404
    assert docs_api.client.get(D, headers=bob).json()["items"] == []

    r = docs_api.client.post(
        D, files={"file": ("x.md", b"# x\n\nshared text")}, data={"shared": "true"}, headers=bob
    )
    assert r.status_code == 403
    shared = upload(
        docs_api,
        admin,
        "policy.md",
        b"# Policy\n\nThe office closes at 18:30.",
        collection="handbook",
        shared="true",
    )["document"]
    assert shared["shared"] is True
    hit = search(docs_api, bob, "when does the office close")[0]
    assert hit["collection"] == "handbook" and "18:30" in hit["text"]
    assert docs_api.client.delete(f"{D}/{shared['id']}", headers=bob).status_code == 403


def test_rag_context_contract(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    upload(docs_api, admin, "src/storage/heron.md", GUIDE, collection="acme/heron")
    upload(docs_api, admin, "tulips.txt", b"Tulips bloom in April in Lisse.", collection="garden")
    r = docs_api.client.post(
        "/api/v1/review/rag-context",
        json={
            "query": "How fast is compaction allowed to run?",
            "repositories": ["acme/heron"],
            "max_results": 2,
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"enabled", "focus_areas", "references"}
    assert body["enabled"] is True
    assert isinstance(body["focus_areas"], list) and "Compaction" in body["focus_areas"]
    refs = body["references"]
    assert 1 <= len(refs) <= 2
    for ref in refs:
        assert set(ref) == {"repository", "file_path", "summary", "score", "url"}
        assert ref["repository"] == "acme/heron" and ref["file_path"] == "src/storage/heron.md"
        assert isinstance(ref["score"], float) and ref["url"] is None
    assert "40 megabytes" in refs[0]["summary"] and len(refs[0]["summary"]) <= 300
    r = docs_api.client.post("/api/v1/review/rag-context", json={"query": ""}, headers=admin)
    assert r.status_code == 422
    r = docs_api.client.post("/api/v1/review/rag-context", json={"query": "x"})
    assert r.status_code == 401


def test_rag_context_disabled(api_factory: Callable[..., Api]) -> None:
    api = api_factory(research={"documents": False})
    admin = api.setup_admin()
    r = api.client.post("/api/v1/review/rag-context", json={"query": "anything"}, headers=admin)
    assert r.status_code == 200
    assert r.json() == {"enabled": False, "focus_areas": [], "references": []}
    assert api.client.get(D, headers=admin).status_code == 400  # feature off, clearly


def test_concurrent_uploads_of_one_path_keep_one_document(docs_api: Api) -> None:
    import asyncio

    from mongars.research.service import Actor

    admin = docs_api.setup_admin()
    service = docs_api.runtime.documents.service
    versions = [GUIDE, GUIDE.replace(b"BLUE-HERON-42", b"RED-KITE-9"), b"# Other\n\nthird text"]

    async def race() -> list[str]:
        results = await asyncio.gather(
            *(service.ingest(Actor(1), "race", "same.md", v) for v in versions)
        )
        return [r.status for r in results]

    statuses = docs_api.client.portal.call(race)  # type: ignore[union-attr]
    assert sorted(statuses).count("created") == 1, statuses
    items = docs_api.client.get(D, headers=admin).json()["items"]
    assert len(items) == 1 and items[0]["path"] == "same.md"
    hits = search(docs_api, admin, "third text heron", k=20)
    assert {h["document_id"] for h in hits} == {items[0]["id"]}
    assert items[0]["chunks"] == len({h["chunk_id"] for h in hits if h["document_id"]})


def test_delete_collection_removes_its_documents(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    bob = docs_api.create_user(admin, "bob")
    upload(docs_api, admin, "heron.md", GUIDE, collection="tmp")
    cid = docs_api.client.get("/api/v1/collections", headers=admin).json()[0]["id"]
    assert docs_api.client.delete(f"/api/v1/collections/{cid}", headers=bob).status_code == 404
    assert docs_api.client.delete(f"/api/v1/collections/{cid}", headers=admin).status_code == 204
    assert docs_api.client.get(D, headers=admin).json()["items"] == []
    assert search(docs_api, admin, "backup code name") == []
    r = docs_api.client.post(
        "/api/v1/collections", json={"name": "team", "shared": True}, headers=bob
    )
    assert r.status_code == 403
    r = docs_api.client.post("/api/v1/collections", json={"name": ""}, headers=bob)
    assert r.status_code == 422


def test_export_holds_own_documents_and_gaps_without_vectors(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    api = api_factory(
        provider=ScriptedLLM(replies=["I am not sure."]),
        embedder=embedder,
        memory={"enabled": True},
        research={"documents": True},
    )
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    upload(api, bob, "heron.md", GUIDE)
    upload(
        api, admin, "policy.md", b"# Policy\n\nShared rule text.", collection="hb", shared="true"
    )
    api.client.post(
        "/api/v1/conversation/chat",
        json={"message": "Who painted the Sistine Chapel?"},
        headers=bob,
    )
    export = api.client.get("/api/v1/memory/export", headers=bob).json()
    assert [c["name"] for c in export["collections"]] == ["notes"]  # not the shared one
    assert [d["path"] for d in export["documents"]] == ["heron.md"]
    chunks = export["document_chunks"]
    assert chunks and "BLUE-HERON-42" in " ".join(c["text"] for c in chunks)
    assert all("embedding" not in c for c in chunks)
    assert [g["question"] for g in export["knowledge_gaps"]] == ["Who painted the Sistine Chapel?"]
