"""GET/PUT/DELETE /api/v1/profile: validation, isolation, reset, export, account deletion."""

from __future__ import annotations

from typing import Any

import pytest

from mongars.persona.contributor import persona_service
from tests.conftest import Api

PROFILE = "/api/v1/profile"


def chat(api: Api, headers: dict[str, str], message: str) -> dict[str, Any]:
    r = api.client.post("/api/v1/conversation/chat", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_new_user_has_an_empty_profile(api: Api) -> None:
    headers = api.setup_admin()
    body = api.client.get(PROFILE, headers=headers).json()
    assert body["explicit"] == {
        "persona": None,
        "tone": None,
        "verbosity": None,
        "language": None,
        "emoji": None,
    }
    assert body["inferred"]["messages_observed"] == 0 and body["inferred"]["confidence"] == 0
    assert body["inferred"]["words_per_message"] is None
    assert body["steering"]["directives"] == [] and body["updated_at"] is None
    assert api.client.get(PROFILE).status_code == 401


def test_put_sets_and_replaces_explicit_preferences(api: Api) -> None:
    headers = api.setup_admin()
    prefs = {"persona": "  You are Ada, a patient tutor.  ", "tone": "formal", "language": "FR"}
    r = api.client.put(PROFILE, json=prefs, headers=headers)
    assert r.status_code == 200, r.text
    explicit = r.json()["explicit"]
    assert explicit["persona"] == "You are Ada, a patient tutor."
    assert explicit["tone"] == "formal" and explicit["language"] == "fr"
    texts = [d["text"] for d in r.json()["steering"]["directives"]]
    assert texts == ["Answer in French.", "Use a formal register."]
    assert api.client.get(PROFILE, headers=headers).json()["explicit"] == explicit
    # PUT replaces: what is left out is no longer set
    r = api.client.put(PROFILE, json={"verbosity": "terse", "emoji": False}, headers=headers)
    assert r.json()["explicit"] == {
        "persona": None,
        "tone": None,
        "verbosity": "terse",
        "language": None,
        "emoji": False,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tone": "grumpy"}, "tone"),
        ({"verbosity": "long"}, "verbosity"),
        ({"language": "klingon"}, "language"),
        ({"emoji": "sometimes"}, "emoji"),
        ({"persona": "x" * 2001}, "persona"),
        ({"persona": "nul\x00"}, "persona"),
        ({"tones": "formal"}, "tones"),
    ],
)
def test_bad_preferences_are_422(api: Api, body: dict[str, Any], field: str) -> None:
    headers = api.setup_admin()
    r = api.client.put(PROFILE, json=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input" and field in r.json()["detail"]
    assert api.client.get(PROFILE, headers=headers).json()["updated_at"] is None


def test_profile_shows_measured_values_with_their_counts(api: Api) -> None:
    headers = api.setup_admin()
    for message in ("Bonjour, comment ça va ?", "Merci, et la météo de demain ?", "ok"):
        chat(api, headers, message)
    inferred = api.client.get(PROFILE, headers=headers).json()["inferred"]
    assert inferred["messages_observed"] == 3
    assert inferred["confidence"] == 0.5
    assert inferred["words_per_message"]["observations"] == 3
    assert inferred["words_per_message"]["value"] == pytest.approx((4 + 6 + 1) / 3, abs=1e-3)
    assert inferred["question_rate"]["value"] == pytest.approx(2 / 3, abs=1e-3)
    assert inferred["language"] == {"value": "fr", "share": 1.0, "observations": 2}


def test_profiles_are_isolated_and_reset(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    api.client.put(PROFILE, json={"tone": "casual"}, headers=admin)
    chat(api, admin, "hey whats up")
    assert api.client.get(PROFILE, headers=bob).json()["explicit"]["tone"] is None
    assert api.client.get(PROFILE, headers=bob).json()["inferred"]["messages_observed"] == 0
    assert api.client.delete(PROFILE, headers=bob).status_code == 204
    assert api.client.get(PROFILE, headers=admin).json()["explicit"]["tone"] == "casual"
    r = api.client.delete(PROFILE, headers=admin)
    assert r.status_code == 204
    after = api.client.get(PROFILE, headers=admin).json()
    assert after["explicit"]["tone"] is None and after["inferred"]["messages_observed"] == 0


def test_export_and_deletion_with_the_account(api: Api) -> None:
    from sqlalchemy import delete, func, select

    from mongars.auth.models import User
    from mongars.persona.models import Profile

    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    api.client.put(PROFILE, json={"language": "es", "persona": "Be brief."}, headers=bob)
    chat(api, bob, "¿Qué hora es en Madrid ahora mismo?")
    service = persona_service(api.runtime)

    async def export() -> dict[str, Any]:
        async with api.runtime.sessions() as s:
            user = (await s.execute(select(User).where(User.username == "bob"))).scalar_one()
        return await service.export(user)

    exported = api.client.portal.call(export)  # type: ignore[union-attr]
    assert exported["explicit"]["language"] == "es"
    assert exported["explicit"]["persona"] == "Be brief."
    assert exported["inferred"]["messages_observed"] == 1
    assert exported["stored_style"]["metrics"]["words_per_message"]["n"] == 1

    async def delete_bob_and_count() -> tuple[int, int]:
        count = select(func.count()).select_from(Profile)
        async with api.runtime.sessions() as s:
            before = int(await s.scalar(count) or 0)
            await s.execute(delete(User).where(User.username == "bob"))
            await s.commit()
            return before, int(await s.scalar(count) or 0)

    assert api.client.portal.call(delete_bob_and_count) == (1, 0)  # type: ignore[union-attr]
