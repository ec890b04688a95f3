"""The console's documents page over plain HTTP (no JavaScript), with the real MiniLM
embedder: upload, re-upload, refused files, shared rights, delete, CSRF, isolation,
search; and the sources under an answer rendered from the stored turn."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api
from tests.fakes import ScriptedLLM
from tests.research.test_documents_api import GUIDE
from tests.web.test_console_http import csrf, login

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def docs_api(api_factory: Callable[..., Api], embedder: Any) -> Api:
    return api_factory(
        provider=ScriptedLLM(replies=["The code name is BLUE-HERON-42 [1]."]),
        embedder=embedder,
        research={"documents": True},
    )


def web_client(api: Api, username: str = "admin") -> TestClient:
    """A second browser-like client sharing the app, logged in to the console."""
    client = TestClient(api.client.app)
    assert login(client, username).status_code == 303
    return client


def upload(
    client: TestClient,
    name: str,
    data: bytes,
    collection: str = "notes",
    token: str | None = None,
    **form: str,
) -> Any:
    token = csrf(client, "/documents") if token is None else token
    return client.post(
        "/documents/upload",
        files={"file": (name, data)},
        data={"collection": collection, "csrf_token": token, **form},
        follow_redirects=False,
    )


def listed_paths(client: TestClient, query: str = "") -> list[str]:
    page = client.get(f"/documents{query}")
    assert page.status_code == 200, page.text
    return [html.unescape(p) for p in re.findall(r'<td class="path">([^<]*)</td>', page.text)]


def flash_after(client: TestClient, response: Any) -> str:
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    match = re.search(r'<p class="flash" role="status">([^<]*)</p>', page.text)
    assert match, page.text[:500]
    return html.unescape(match.group(1))


def test_upload_without_javascript_then_listed_then_unchanged(docs_api: Api) -> None:
    docs_api.setup_admin()
    web = web_client(docs_api)
    r = upload(web, "heron.md", GUIDE)
    assert r.headers["location"] == "/documents"
    assert "heron.md in notes: added" in flash_after(web, r)
    page = web.get("/documents").text
    assert "Heron storage guide" in page and "markdown" in page
    assert listed_paths(web) == ["heron.md"]

    again = upload(web, "heron.md", GUIDE)
    assert "unchanged: the same file is already stored" in flash_after(web, again)
    changed = upload(web, "heron.md", GUIDE + b"\n## Retention\n\nKept for 90 days.\n")
    assert "updated" in flash_after(web, changed)
    assert listed_paths(web) == ["heron.md"]  # replaced, not added twice
    upload(web, "other.txt", b"Another note about sparrows.", collection="birds")
    assert listed_paths(web) == ["other.txt", "heron.md"]  # newest first
    assert listed_paths(web, "?collection=birds") == ["other.txt"]

    found = web.get("/documents", params={"q": "what is the backup code name?"})
    assert found.status_code == 200
    assert "BLUE-HERON-42" in found.text and "Backups" in found.text and "score" in found.text


def test_bad_files_are_refused_readably_and_nothing_is_stored(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    web = web_client(docs_api)
    r = upload(web, "notes.txt", bytes(range(256)) * 20)
    assert r.status_code == 422
    assert "binary_content" in r.text and 'role="alert"' in r.text
    assert '<form method="post" action="/documents/upload"' in r.text  # the page, not JSON
    r = upload(web, "empty.md", b"")
    assert r.status_code == 422 and "empty_document" in r.text
    r = upload(web, "ok.md", b"# Fine", collection="../bad")
    assert r.status_code == 422 and "collection:" in r.text
    listing = docs_api.client.get("/api/v1/documents", headers=admin).json()
    assert listing["items"] == []
    assert "No documents yet." in web.get("/documents").text


def test_shared_documents_only_by_admins(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    docs_api.create_user(admin, "alice")
    web_admin = web_client(docs_api)
    alice = web_client(docs_api, "alice")
    assert 'name="shared"' in web_admin.get("/documents").text
    assert 'name="shared"' not in alice.get("/documents").text

    r = upload(alice, "mine.md", GUIDE, shared="true")
    assert r.status_code == 403 and "only admins can write shared collections" in r.text
    assert listed_paths(alice) == []

    r = upload(web_admin, "team.md", b"# Team handbook\n\nLunch is at noon.", shared="true")
    assert "(shared)" in flash_after(web_admin, r)
    page = alice.get("/documents").text
    assert "team.md" in page and '<span class="badge">shared</span>' in page
    assert 'aria-label="Delete team.md"' not in page  # no delete button for her
    doc_id = docs_api.client.get("/api/v1/documents", headers=admin).json()["items"][0]["id"]
    token = csrf(alice, "/documents")
    r = alice.post(f"/documents/{doc_id}/delete", data={"csrf_token": token})
    assert r.status_code == 403 and "only admins can delete shared documents" in r.text
    assert listed_paths(alice) == ["team.md"]


def test_delete_and_other_users_documents(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    docs_api.create_user(admin, "bob")
    web = web_client(docs_api)
    bob = web_client(docs_api, "bob")
    flash_after(web, upload(web, "secret.md", b"# Admin secret\n\nThe vault code is 7741."))
    assert listed_paths(bob) == []
    bob_search = bob.get("/documents", params={"q": "vault code"}).text
    assert "7741" not in bob_search and "No passage matches." in bob_search

    doc_id = docs_api.client.get("/api/v1/documents", headers=admin).json()["items"][0]["id"]
    token = csrf(bob, "/documents")
    r = bob.post(f"/documents/{doc_id}/delete", data={"csrf_token": token})
    assert r.status_code == 404  # not his: not found, not forbidden
    assert listed_paths(web) == ["secret.md"]

    token = csrf(web, "/documents")
    r = web.post(f"/documents/{doc_id}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert "Deleted secret.md." in flash_after(web, r)
    assert listed_paths(web) == []


def test_csrf_is_required(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    web = web_client(docs_api)
    r = upload(web, "heron.md", GUIDE, token="")
    assert r.status_code == 403 and "CSRF" in r.text
    r = upload(web, "heron.md", GUIDE, token="0" * 64)
    assert r.status_code == 403
    token = csrf(web, "/documents")
    cross = web.post(
        "/documents/upload",
        files={"file": ("heron.md", GUIDE)},
        data={"csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    assert docs_api.client.get("/api/v1/documents", headers=admin).json()["items"] == []
    flash_after(web, upload(web, "heron.md", GUIDE))
    doc_id = docs_api.client.get("/api/v1/documents", headers=admin).json()["items"][0]["id"]
    assert web.post(f"/documents/{doc_id}/delete", data={}).status_code == 403
    assert listed_paths(web) == ["heron.md"]


def test_documents_off_says_so(api: Api) -> None:
    api.setup_admin()
    web = web_client(api)
    page = web.get("/documents")
    assert page.status_code == 200 and "Documents are off on this server" in page.text
    r = upload(web, "heron.md", GUIDE)
    assert r.status_code == 400 and "documents are off" in r.text


def test_sources_under_answers_rendered_from_history(docs_api: Api) -> None:
    admin = docs_api.setup_admin()
    web = web_client(docs_api)
    title = f"Heron {XSS} guide"
    body = f"# {title}\n\n## Backups\n\nBackups use the code name BLUE-HERON-42. {XSS}\n"
    flash_after(web, upload(web, "heron.md", body.encode()))
    listing = web.get("/documents").text
    assert XSS not in listing and html.escape(title, quote=False) in listing

    token = csrf(web, "/chat")
    r = web.post(
        "/chat/send",
        data={"message": "What is the backup code name?", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    thread = r.headers["location"].split("/chat/")[1].split("#")[0]
    messages = docs_api.client.get(f"/api/v1/threads/{thread}/messages", headers=admin).json()
    cited = messages["items"][0]["citations"]
    assert cited and cited[0]["path"] == "heron.md" and cited[0]["n"] == 1

    page = web.get(f"/chat/{thread}").text
    sources = page[page.index('<div class="sources">') :]
    sources = sources[: sources.index("</ol>")]
    assert "Sources" in sources and "heron.md" in sources and "[1]" in sources
    assert "BLUE-HERON-42" in sources  # the excerpt, expandable
    assert "<img" not in sources and "&lt;img src=x onerror=alert(1)&gt;" in sources
    assert "<a " not in sources  # no url: no link


def test_http_url_filter_only_allows_http_links() -> None:
    from mongars.web.render import http_url

    assert http_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert http_url("http://example.org") == "http://example.org"
    for bad in ["javascript:alert(1)", "data:text/html,x", "//evil.example", "/local", None, 3]:
        assert http_url(bad) is None, bad


def test_too_large_file_is_refused_with_413_page(
    api_factory: Callable[..., Api], embedder: Any
) -> None:
    api = api_factory(embedder=embedder, research={"documents": True, "max_upload_bytes": 2000})
    api.setup_admin()
    web = web_client(api)
    r = upload(web, "big.md", b"# Big\n\n" + b"word " * 1000)
    assert r.status_code == 413 and "over the limit of 2,000" in r.text
    assert 'role="alert"' in r.text and listed_paths(web) == []
