"""/api/v1/conversation/turns/{id}/feedback: rate, correct, change, remove; only the owner."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Api

TURN = "/api/v1/conversation/turns/{}/feedback"


def chat(api: Api, headers: dict[str, str], message: str = "Capital of France?") -> dict[str, Any]:
    r = api.client.post("/api/v1/conversation/chat", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def messages(api: Api, headers: dict[str, str], thread: str) -> list[dict[str, Any]]:
    r = api.client.get(f"/api/v1/threads/{thread}/messages", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_rate_up_change_to_down_then_remove(api_factory: Any, backend: dict[str, Any]) -> None:
    api = api_factory(**backend)  # SQLite, then a real PostgreSQL
    headers = api.setup_admin()
    answer = chat(api, headers)
    url = TURN.format(answer["turn_id"])
    assert api.client.get(url, headers=headers).status_code == 404  # nothing yet

    r = api.client.post(url, json={"rating": "up"}, headers=headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {"turn_id", "rating", "correction", "comment", "created_at", "updated_at"}
    assert (first["turn_id"], first["rating"], first["correction"]) == (
        answer["turn_id"],
        "up",
        None,
    )
    assert api.client.get(url, headers=headers).json() == first

    r = api.client.post(url, json={"rating": "down", "comment": "wrong city"}, headers=headers)
    changed = r.json()
    assert (changed["rating"], changed["comment"]) == ("down", "wrong city")
    assert changed["created_at"] == first["created_at"]
    assert changed["updated_at"] >= first["updated_at"]
    # The listings show the current rating next to the turn.
    [item] = messages(api, headers, answer["session_id"])
    assert item["feedback"] == {"rating": "down", "correction": None}
    [past] = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert past["turn_id"] == answer["turn_id"]
    assert past["feedback"] == {"rating": "down", "correction": None}
    assert set(past) >= {"user_id", "query", "response", "timestamp"}  # the v1 fields stay

    # Replacing clears what is left out.
    assert api.client.post(url, json={"rating": "up"}, headers=headers).json()["comment"] is None

    assert api.client.delete(url, headers=headers).status_code == 204
    assert api.client.get(url, headers=headers).status_code == 404
    assert api.client.delete(url, headers=headers).status_code == 404
    assert messages(api, headers, answer["session_id"])[0]["feedback"] is None


def test_correction_only_trimmed_and_unicode(api: Api) -> None:
    headers = api.setup_admin()
    turn = chat(api, headers)["turn_id"]
    better = "La capitale de la France est Paris 🇫🇷 — 巴黎.\n\n```\ncode\n```"
    body = {"rating": None, "correction": f"  {better}\n ", "comment": "   "}
    r = api.client.post(TURN.format(turn), json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["rating"], r.json()["correction"], r.json()["comment"]) == (None, better, None)
    r = api.client.get("/api/v1/conversation/history", headers=headers)
    assert r.json()[0]["feedback"] == {"rating": None, "correction": better}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "at least one of rating"),
        ({"rating": None, "correction": "  ", "comment": "\n"}, "at least one of rating"),
        ({"rating": "meh"}, "rating"),
        ({"rating": 1}, "rating"),
        ({"rating": "up", "stars": 5}, "stars"),
        ({"comment": "x" * 2001}, "comment"),
        ({"correction": "nul\x00"}, "correction"),
    ],
)
def test_bad_bodies_are_422(api: Api, body: dict[str, Any], needle: str) -> None:
    headers = api.setup_admin()
    turn = chat(api, headers)["turn_id"]
    r = api.client.post(TURN.format(turn), json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input" and needle in r.json()["detail"]
    assert api.client.get(TURN.format(turn), headers=headers).status_code == 404  # nothing stored


def test_correction_limit_is_the_chat_message_limit(api_factory: Any) -> None:
    api = api_factory(chat={"max_message_chars": 40})
    headers = api.setup_admin()
    url = TURN.format(chat(api, headers)["turn_id"])
    r = api.client.post(url, json={"correction": "é" * 41}, headers=headers)
    assert r.status_code == 422
    assert "correction: at most 40 characters" in r.json()["detail"]
    r = api.client.post(url, json={"correction": "é" * 40, "comment": "c" * 2000}, headers=headers)
    assert r.status_code == 200, r.text


def test_only_the_turns_owner_sees_or_rates_it(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    carol = api.create_user(admin, "carol")
    bobs = chat(api, bob, "bob's question")["turn_id"]
    url = TURN.format(bobs)
    assert api.client.post(url, json={"rating": "down"}, headers=bob).status_code == 200
    for other in (admin, carol):  # an admin too: 404, not 403
        for r in (
            api.client.post(url, json={"rating": "up"}, headers=other),
            api.client.get(url, headers=other),
            api.client.delete(url, headers=other),
        ):
            assert r.status_code == 404, r.text
            assert r.json() == {"detail": f"no turn {bobs}", "code": "not_found"}
    assert api.client.get(url, headers=bob).json()["rating"] == "down"  # untouched
    missing = api.client.post(TURN.format(987654), json={"rating": "up"}, headers=bob)
    assert missing.status_code == 404
    assert api.client.post(TURN.format(0), json={"rating": "up"}, headers=bob).status_code == 422
    assert api.client.post(url, json={"rating": "up"}).status_code == 401


def test_a_superseded_turn_can_still_be_rated(api: Api) -> None:
    from mongars.conversation.repository import ConversationRepository
    from mongars.db.engine import unit_of_work

    headers = api.setup_admin()
    turn = chat(api, headers)["turn_id"]

    async def supersede() -> None:
        async with unit_of_work(api.runtime.sessions) as session:
            await ConversationRepository(session).supersede(turn, 1)

    api.client.portal.call(supersede)  # type: ignore[union-attr]
    r = api.client.post(TURN.format(turn), json={"rating": "down"}, headers=headers)
    assert r.status_code == 200 and r.json()["rating"] == "down"


def test_feedback_is_exported_and_goes_with_its_thread(api: Api) -> None:
    headers = api.setup_admin()
    bob = api.create_user(headers, "bob")
    answer = chat(api, headers)
    url = TURN.format(answer["turn_id"])
    api.client.post(url, json={"rating": "up", "correction": "Paris."}, headers=headers)
    other = chat(api, bob, "bob asks")["turn_id"]
    api.client.post(TURN.format(other), json={"rating": "down"}, headers=bob)

    export = api.client.get("/api/v1/memory/export", headers=headers).json()
    [row] = export["feedback"]
    assert row["turn_id"] == answer["turn_id"] and row["rating"] == "up"
    assert row["correction"] == "Paris." and row["user_id"] == 1
    assert {"created_at", "updated_at", "comment"} <= set(row)

    r = api.client.delete(f"/api/v1/threads/{answer['session_id']}", headers=headers)
    assert r.status_code == 204
    assert api.client.get("/api/v1/memory/export", headers=headers).json()["feedback"] == []
    assert len(api.client.get("/api/v1/memory/export", headers=bob).json()["feedback"]) == 1


def test_feedback_counter_in_metrics(api: Api) -> None:
    headers = api.setup_admin()
    first, second = chat(api, headers)["turn_id"], chat(api, headers, "again")["turn_id"]
    api.client.post(TURN.format(first), json={"rating": "up"}, headers=headers)
    api.client.post(TURN.format(first), json={"rating": "down"}, headers=headers)
    api.client.post(TURN.format(second), json={"correction": "better"}, headers=headers)
    api.client.delete(TURN.format(first), headers=headers)
    api.client.post(TURN.format(second), json={"rating": "sideways"}, headers=headers)  # 422

    text = api.client.get("/metrics").text
    counts = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^feedback_total\{[^}]*rating="(\w+)"[^}]*\} (\S+)$', text, re.M)
    }
    assert counts == {"up": 1.0, "down": 1.0, "none": 1.0, "removed": 1.0}
