"""API key management: shown once, stored hashed, owner-only, revocable, limited."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mongars.apikeys.service import MAX_ACTIVE_KEYS
from tests.conftest import Api


def create_key(api: Api, headers: dict[str, str], name: str = "laptop", **flags: Any) -> Any:
    r = api.client.post("/api/v1/keys", json={"name": name, **flags}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def load_key_rows(api: Api) -> list[Any]:
    from sqlalchemy import select

    from mongars.apikeys.models import ApiKey

    async def load() -> list[ApiKey]:
        async with api.runtime.sessions() as s:
            return list((await s.execute(select(ApiKey).order_by(ApiKey.id))).scalars())

    return api.client.portal.call(load)  # type: ignore[union-attr,no-any-return]


def test_create_shows_the_key_once_and_stores_only_its_hash(api: Api) -> None:
    headers = api.setup_admin()
    created = create_key(api, headers, "Open WebUI", use_history=False)
    key = created["key"]
    assert key.startswith("mg_") and len(key) > 40
    assert created["prefix"] == key[:10]
    assert created["name"] == "Open WebUI"
    assert (created["use_history"], created["use_memory"], created["use_persona"]) == (
        False,
        True,
        True,
    )
    assert created["created_at"] and created["revoked_at"] is None

    listed = api.client.get("/api/v1/keys", headers=headers).json()
    assert len(listed) == 1
    assert "key" not in listed[0] and "key_hash" not in listed[0]
    assert key not in str(listed)
    assert listed[0]["id"] == created["id"] and listed[0]["prefix"] == created["prefix"]

    (row,) = load_key_rows(api)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in (row.key_hash, row.prefix, row.name)
    assert row.last_used_at is None

    assert api.client.get("/v1/models", headers=bearer(key)).status_code == 200
    (row,) = load_key_rows(api)
    assert row.last_used_at is not None  # recorded on use


def test_list_is_newest_first_and_keeps_revoked_keys(api: Api) -> None:
    headers = api.setup_admin()
    ids = [create_key(api, headers, f"key {i}")["id"] for i in range(3)]
    assert api.client.delete(f"/api/v1/keys/{ids[1]}", headers=headers).status_code == 204
    listed = api.client.get("/api/v1/keys", headers=headers).json()
    assert [k["id"] for k in listed] == ids[::-1]
    revoked = {k["id"]: k["revoked_at"] for k in listed}
    assert revoked[ids[1]] is not None and revoked[ids[0]] is None and revoked[ids[2]] is None


def test_revoked_key_gets_401(api: Api) -> None:
    headers = api.setup_admin()
    created = create_key(api, headers)
    assert api.client.get("/v1/models", headers=bearer(created["key"])).status_code == 200
    assert api.client.delete(f"/api/v1/keys/{created['id']}", headers=headers).status_code == 204
    r = api.client.get("/v1/models", headers=bearer(created["key"]))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    # revoking again is harmless and keeps the first revocation time
    first = api.client.get("/api/v1/keys", headers=headers).json()[0]["revoked_at"]
    assert api.client.delete(f"/api/v1/keys/{created['id']}", headers=headers).status_code == 204
    assert api.client.get("/api/v1/keys", headers=headers).json()[0]["revoked_at"] == first


def test_key_of_a_disabled_user_gets_401(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    key = create_key(api, bob)["key"]
    assert api.client.get("/v1/models", headers=bearer(key)).status_code == 200
    r = api.client.post("/api/v1/admin/users/bob/active?is_active=false", headers=admin)
    assert r.status_code == 200
    assert api.client.get("/v1/models", headers=bearer(key)).status_code == 401


def test_another_user_cannot_see_change_or_revoke_a_key(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    created = create_key(api, admin, "admin's key")
    assert api.client.get("/api/v1/keys", headers=bob).json() == []
    url = f"/api/v1/keys/{created['id']}"
    assert api.client.delete(url, headers=bob).status_code == 404
    r = api.client.patch(url, json={"use_history": False}, headers=bob)
    assert r.status_code == 404
    assert api.client.delete("/api/v1/keys/999999", headers=admin).status_code == 404
    # still active and unchanged for its owner
    assert api.client.get("/v1/models", headers=bearer(created["key"])).status_code == 200
    (mine,) = api.client.get("/api/v1/keys", headers=admin).json()
    assert mine["use_history"] is True and mine["revoked_at"] is None


def test_patch_changes_only_the_given_flags(api: Api) -> None:
    headers = api.setup_admin()
    created = create_key(api, headers)
    url = f"/api/v1/keys/{created['id']}"
    r = api.client.patch(url, json={"use_memory": False}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["use_history"], body["use_memory"], body["use_persona"]) == (True, False, True)
    assert "key" not in body
    api.client.delete(url, headers=headers)
    assert api.client.patch(url, json={"use_memory": True}, headers=headers).status_code == 409


def test_at_most_fifty_active_keys(api: Api) -> None:
    headers = api.setup_admin()
    ids = [create_key(api, headers, f"k{i}")["id"] for i in range(MAX_ACTIVE_KEYS)]
    assert MAX_ACTIVE_KEYS == 50
    r = api.client.post("/api/v1/keys", json={"name": "one too many"}, headers=headers)
    assert r.status_code == 409 and "50" in r.json()["detail"]
    api.client.delete(f"/api/v1/keys/{ids[0]}", headers=headers)
    create_key(api, headers, "room again")
    assert len(api.client.get("/api/v1/keys", headers=headers).json()) == MAX_ACTIVE_KEYS + 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, None, 7, "tab\there"])
def test_bad_names_are_422(api: Api, name: Any) -> None:
    headers = api.setup_admin()
    r = api.client.post("/api/v1/keys", json={"name": name}, headers=headers)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input"
    assert api.client.get("/api/v1/keys", headers=headers).json() == []


def test_name_is_trimmed_and_100_chars_allowed(api: Api) -> None:
    headers = api.setup_admin()
    assert create_key(api, headers, "  spaced  ")["name"] == "spaced"
    assert create_key(api, headers, "é" * 100)["name"] == "é" * 100


def test_key_routes_need_a_user_token_not_an_api_key(api: Api) -> None:
    headers = api.setup_admin()
    key = create_key(api, headers)["key"]
    assert api.client.get("/api/v1/keys").status_code == 401
    assert api.client.post("/api/v1/keys", json={"name": "x"}).status_code == 401
    assert api.client.get("/api/v1/keys", headers=bearer(key)).status_code == 401
    # and a user token is not an API key
    assert api.client.get("/v1/models", headers=headers).status_code == 401
