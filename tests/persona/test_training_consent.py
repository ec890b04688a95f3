"""Training consent on the profile API, and the one query dataset curation asks."""

from __future__ import annotations

from typing import Any

import pytest

from mongars.db.engine import unit_of_work
from mongars.persona.repository import ProfileRepository
from tests.conftest import Api

PROFILE = "/api/v1/profile"


def consent(api: Api, headers: dict[str, str]) -> tuple[bool | None, bool]:
    body = api.client.get(PROFILE, headers=headers).json()
    return body["allow_training"], body["allow_training_effective"]


def test_consent_defaults_to_no_and_can_be_set_and_withdrawn(api: Api) -> None:
    headers = api.setup_admin()
    assert consent(api, headers) == (None, False)  # privacy first

    r = api.client.put(PROFILE, json={"allow_training": True}, headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["allow_training"], r.json()["allow_training_effective"]) == (True, True)
    # A PUT of preferences that leaves the consent out does not change it...
    r = api.client.put(PROFILE, json={"tone": "formal"}, headers=headers)
    assert r.json()["explicit"]["tone"] == "formal" and consent(api, headers) == (True, True)
    # ...nor does a profile reset (preferences and style only).
    assert api.client.delete(PROFILE, headers=headers).status_code == 204
    assert consent(api, headers) == (True, True)
    assert api.client.get(PROFILE, headers=headers).json()["explicit"]["tone"] is None

    api.client.put(PROFILE, json={"allow_training": False}, headers=headers)
    assert consent(api, headers) == (False, False)
    api.client.put(PROFILE, json={"allow_training": None}, headers=headers)
    assert consent(api, headers) == (None, False)

    r = api.client.put(PROFILE, json={"allow_training": "maybe"}, headers=headers)
    assert r.status_code == 422 and "allow_training" in r.json()["detail"]


def test_effective_consent_follows_the_server_default(
    api_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGARS_TRAINING__DEFAULT_CONSENT", "true")
    api = api_factory()
    assert api.runtime.settings.training.default_consent is True
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    assert consent(api, admin) == (None, True)
    api.client.put(PROFILE, json={"allow_training": False}, headers=bob)
    assert consent(api, bob) == (False, False)  # an explicit no beats the default
    api.client.put(PROFILE, json={"tone": "casual"}, headers=admin)  # a row, consent NULL
    assert consent(api, admin) == (None, True)


def test_consent_is_in_the_data_export(api: Api) -> None:
    headers = api.setup_admin()
    api.client.put(PROFILE, json={"allow_training": True}, headers=headers)
    persona = api.client.get("/api/v1/memory/export", headers=headers).json()["persona"]
    assert persona["allow_training"] is True and persona["allow_training_effective"] is True


def test_training_consent_query(api_factory: Any, backend: dict[str, Any]) -> None:
    api = api_factory(**backend)  # SQLite, then a real PostgreSQL
    admin = api.setup_admin()
    headers = {name: api.create_user(admin, name) for name in ("bob", "carol", "dave")}
    api.client.put(PROFILE, json={"allow_training": True}, headers=headers["bob"])
    api.client.put(PROFILE, json={"tone": "casual"}, headers=headers["carol"])  # NULL consent
    api.client.put(PROFILE, json={"allow_training": False}, headers=headers["dave"])
    me = api.client.get("/api/v1/user/me", headers=admin).json()["id"]
    bob, carol, dave = (
        api.client.get("/api/v1/user/me", headers=headers[n]).json()["id"]
        for n in ("bob", "carol", "dave")
    )

    async def query(user_ids: list[int], default: bool) -> dict[int, bool]:
        async with unit_of_work(api.runtime.sessions) as session:
            return await ProfileRepository(session).training_consent(user_ids, default)

    def call(user_ids: list[int], default: bool) -> dict[int, bool]:
        return api.client.portal.call(query, user_ids, default)  # type: ignore[union-attr]

    everyone = [me, bob, carol, dave, 999]  # the admin has no profile row; 999 no account
    assert call(everyone, False) == {me: False, bob: True, carol: False, dave: False, 999: False}
    assert call(everyone, True) == {me: True, bob: True, carol: True, dave: False, 999: True}
    assert call([bob, bob], False) == {bob: True}
    assert call([], True) == {}
