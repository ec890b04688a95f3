"""Console: the admins' Adapters page (what serves, every version, approve / activate /
canary / rollback / deactivate with a note, the figures side by side, the changes);
refused moves show on the page with their status; other users are refused."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from mongars.adapters import store
from mongars.web import adapters_endpoints
from tests.adapters.factory import add_run
from tests.conftest import Api
from tests.training.test_datasets_api import chat, rate
from tests.web.test_console_http import csrf, login


def register(api: Api, content: bytes) -> int:
    portal = api.client.portal
    assert portal is not None
    run_id = add_run(api.runtime, portal, content)
    version = portal.call(api.runtime.adapters.register_run, run_id)
    return int(version.id)


def post(
    client: TestClient, path: str, token: str, back: str = "/admin/adapters", **form: str
) -> tuple[int, str]:
    """A console form's POST; the page it leads to (the flash), or the page it answered."""
    data = {"csrf_token": token, "back": back, **form}
    r = client.post(path, data=data, follow_redirects=False)
    if r.status_code == 303:
        assert r.headers["location"] == back
        return 303, html.unescape(client.get(back).text)
    return r.status_code, html.unescape(r.text)


def row(page: str, version: int) -> str:
    match = re.search(rf'<tr id="version-{version}">(.*?)</tr>', page, re.S)
    assert match, page
    return match.group(1)


def test_approve_activate_canary_rollback_from_the_console(api: Api) -> None:
    admin = api.setup_admin()
    rate(api, admin, chat(api, admin, "hello"), rating="down")  # a base-model turn
    first, second = register(api, b"adapter one"), register(api, b"adapter two")
    login(api.client)
    page = html.unescape(api.client.get("/admin/adapters").text)
    assert 'href="/admin/adapters" aria-current="page"' in page
    assert "Active: <strong>base model</strong>" in page
    assert "cannot load adapters: Ollama and OpenAI-compatible" in page  # ScriptedLLM
    assert "candidate" in row(page, first) and "dataset_missing" in row(page, first)
    assert "0.750" in row(page, first) and "5/5" in row(page, first)
    assert re.search(r"<td>base model\s*</td>\s*<td>1</td>\s*<td>1 ", page), page
    assert "100.0 %" in page  # one thumbs down in one turn, with its interval
    assert "No changes yet" in page
    token = csrf(api.client, "/admin/adapters")

    # Activating a candidate is refused: the reason shows on the page, with its status.
    status, text = post(api.client, f"/admin/adapters/{first}/activate", token)
    assert status == 409 and 'role="alert"' in text
    assert f"adapter version {first} is candidate: only an approved version may serve" in text

    status, text = post(api.client, f"/admin/adapters/{first}/approve", token, note="looks fine")
    assert status == 303 and f"Adapter version {first} approved." in text
    assert "approved" in row(text, first) and "looks fine" in row(text, first)
    assert "admin" in row(text, first)
    status, text = post(api.client, f"/admin/adapters/{first}/activate", token, note="go")
    assert status == 303 and f"Adapter version {first} activated: version {first} serves" in text
    assert f'Active: <a href="/admin/adapters/{first}">version {first}</a>' in text
    manifest = store.read_manifest(api.runtime.settings.data_dir)
    assert manifest["current"]["version"] == first

    status, text = post(api.client, f"/admin/adapters/{second}/canary", token, share="25%")
    assert status == 303 and f"canary: version {second}, 25% of turns" in text
    assert "answers <strong>25 %</strong> of turns" in text
    status, text = post(api.client, f"/admin/adapters/{second}/canary", token, share="two")
    assert status == 422 and "canary share 'two' is not a number" in text
    status, text = post(api.client, "/admin/adapters/pointer/canary-stop", token)
    assert status == 303 and "Canary stopped" in text and "No canary." in text

    status, text = post(api.client, "/admin/adapters/pointer/rollback", token, note="too eager")
    assert status == 303 and "Rolled back: the base model answers now." in text
    assert "retired" in row(text, first)
    changes = re.search(r'<table class="grid" id="changes">(.*?)</table>', text, re.S)
    assert changes, text
    actions = re.findall(r"<td>(activate|canary_start|canary_stop|rollback)</td>", changes[1])
    assert actions == ["rollback", "canary_stop", "canary_start", "activate"]
    assert "too eager" in changes[1]
    status, text = post(api.client, "/admin/adapters/pointer/rollback", token)
    assert status == 409 and "there is nothing to roll back" in text
    status, text = post(api.client, f"/admin/adapters/{second}/reject", token, note="no")
    assert status == 303 and "rejected" in row(text, second)
    assert post(api.client, "/admin/adapters/999/approve", token)[0] == 404

    one = api.client.get(f"/admin/adapters/{first}")
    assert one.status_code == 200 and "parity_rel_diff" in one.text and "Activate" in one.text
    assert api.client.get("/admin/adapters/999").status_code == 404
    # Without the CSRF token nothing happens.
    r = api.client.post(f"/admin/adapters/{first}/activate", follow_redirects=False)
    assert r.status_code == 403
    audit = api.client.get("/api/v1/admin/audit", headers=admin).json()["items"]
    assert {"adapter.approve", "adapter.activate", "adapter.rollback"} <= {
        e["action"] for e in audit
    }


def test_versions_are_paginated(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.setup_admin()
    versions = [register(api, f"adapter {i}".encode()) for i in range(3)]
    monkeypatch.setattr(adapters_endpoints, "PAGE", 2)
    login(api.client)
    page = api.client.get("/admin/adapters").text
    assert f'id="version-{versions[0]}"' not in page
    older = re.search(r'href="(/admin/adapters\?before=\d+)">Older versions', page)
    assert older, page
    page = api.client.get(older.group(1)).text
    assert f'id="version-{versions[0]}"' in page and "Newest versions" in page


def test_adapters_page_is_for_admins_only(api_factory: Callable[..., Api]) -> None:
    api = api_factory()
    r = api.client.get("/admin/adapters", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/adapters"
    admin = api.setup_admin()
    api.create_user(admin, "alice")
    login(api.client, "alice")
    r = api.client.get("/admin/adapters", follow_redirects=False)
    assert r.status_code == 403 and "admin rights required" in r.text
    assert 'href="/admin/adapters"' not in api.client.get("/chat").text
    token = csrf(api.client, "/chat")
    assert post(api.client, "/admin/adapters/pointer/deactivate", token)[0] == 403
