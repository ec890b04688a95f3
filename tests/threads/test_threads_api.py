"""The Threads API through HTTP: listing, paging, reading, renaming, deleting, searching."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mongars.conversation.models import Thread, Turn
from tests.conftest import Api

BASE = "/api/v1/threads"
REPLY = "Hello there. How can I help?"  # what the scripted model answers


def new_thread(api: Api, headers: dict[str, str], title: str | None = None) -> dict[str, Any]:
    r = api.client.post(BASE, json={} if title is None else {"title": title}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def chat(api: Api, headers: dict[str, str], message: str, session_id: str) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/conversation/chat",
        json={"message": message, "session_id": session_id},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def listed(api: Api, headers: dict[str, str], **params: Any) -> list[str]:
    r = api.client.get(BASE, params={"limit": 100, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["items"]]


def search(api: Api, headers: dict[str, str], q: str, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get(f"{BASE}/search", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def walk(api: Api, headers: dict[str, str], path: str, limit: int, **params: Any) -> list[Any]:
    """Follow next_cursor to the end; every page but the last is full."""
    items: list[Any] = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = api.client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit
    raise AssertionError("pagination did not end")


def run_db(api: Api, fn: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        async with api.runtime.sessions() as session:
            result = await fn(session)
            await session.commit()
            return result

    return api.client.portal.call(go)  # type: ignore[union-attr]


def set_updated_at(api: Api, ids: list[str], when: datetime) -> None:
    run_db(
        api,
        lambda s: s.execute(update(Thread).where(Thread.id.in_(ids)).values(updated_at=when)),
    )


def test_create_get_and_chat_into_a_thread(api: Api) -> None:
    headers = api.setup_admin()
    thread = new_thread(api, headers, "  Trip plans \n")
    assert set(thread) == {"id", "title", "created_at", "updated_at", "message_count"}
    assert thread["title"] == "Trip plans"
    assert len(thread["id"]) == 32 and int(thread["id"], 16) >= 0
    assert thread["message_count"] == 0
    assert thread["created_at"] == thread["updated_at"]
    assert api.client.get(f"{BASE}/{thread['id']}", headers=headers).json() == thread
    untitled = api.client.post(BASE, headers=headers)  # no body at all
    assert untitled.status_code == 201 and untitled.json()["title"] == ""
    assert untitled.json()["id"] != thread["id"]

    chat(api, headers, "Where should we go?", thread["id"])
    after = api.client.get(f"{BASE}/{thread['id']}", headers=headers).json()
    assert after["title"] == "Trip plans"  # chatting keeps a given title
    assert after["message_count"] == 1
    assert after["updated_at"] > thread["updated_at"]


def test_list_is_latest_activity_first(api: Api) -> None:
    headers = api.setup_admin()
    a, b, c = (new_thread(api, headers, name)["id"] for name in "abc")
    assert listed(api, headers) == [c, b, a]
    chat(api, headers, "bump", a)
    assert listed(api, headers) == [a, c, b]
    d = chat(api, headers, "a thread started by chatting", "from-chat")["session_id"]
    page = api.client.get(BASE, headers=headers).json()
    assert [t["id"] for t in page["items"]] == [d, a, c, b]
    assert page["items"][0]["title"] == "a thread started by chatting"
    assert [t["message_count"] for t in page["items"]] == [1, 1, 0, 0]
    assert page["next_cursor"] is None


def test_pagination_walks_every_thread_exactly_once(api: Api) -> None:
    headers = api.setup_admin()
    ids = [new_thread(api, headers, f"t{i}")["id"] for i in range(7)]
    chat(api, headers, "move me up", ids[2])
    everything = listed(api, headers)
    assert sorted(everything) == sorted(ids) and everything[0] == ids[2]
    for limit in (1, 3, 7):
        walked = [t["id"] for t in walk(api, headers, BASE, limit)]
        assert walked == everything
    # Equal timestamps: the id breaks the tie, and nothing is skipped or repeated.
    set_updated_at(api, ids[:5], datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))
    walked = [t["id"] for t in walk(api, headers, BASE, 2)]
    assert walked == listed(api, headers)
    assert walked[-5:] == sorted(ids[:5], reverse=True)
    assert len(set(walked)) == 7


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "!!!!",
        base64.urlsafe_b64encode(b"t|yesterday|abc").decode(),
        base64.urlsafe_b64encode(b"t|2024-01-01T00:00:00|abc").decode(),  # no time zone
        base64.urlsafe_b64encode(b"m|2024-01-01T00:00:00+00:00|5").decode(),  # messages kind
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_malformed_cursor_is_422(api: Api, cursor: str) -> None:
    headers = api.setup_admin()
    for path, params in ((BASE, {}), (f"{BASE}/search", {"q": "x"})):
        r = api.client.get(path, params={"cursor": cursor, **params}, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_input" and "cursor" in r.json()["detail"]


def test_bad_limits_and_message_cursors_are_422(api: Api) -> None:
    headers = api.setup_admin()
    thread = new_thread(api, headers)["id"]
    for limit in (0, 101, "many"):
        assert api.client.get(BASE, params={"limit": limit}, headers=headers).status_code == 422
    bad = [
        "garbage",
        base64.urlsafe_b64encode(b"m|2024-01-01T00:00:00+00:00|abc").decode(),
        base64.urlsafe_b64encode(b"m|2024-01-01T00:00:00+00:00|99999999999999").decode(),
        base64.urlsafe_b64encode(b"t|2024-01-01T00:00:00+00:00|5").decode(),
    ]
    for cursor in bad:
        r = api.client.get(f"{BASE}/{thread}/messages?cursor={cursor}", headers=headers)
        assert r.status_code == 422 and "cursor" in r.json()["detail"], r.text


def test_rename_keeps_place_and_validates(api: Api) -> None:
    headers = api.setup_admin()
    old, new = new_thread(api, headers, "old")["id"], new_thread(api, headers, "new")["id"]
    r = api.client.patch(f"{BASE}/{old}", json={"title": "  Renamed  "}, headers=headers)
    assert r.status_code == 200 and r.json()["title"] == "Renamed"
    assert api.client.get(f"{BASE}/{old}", headers=headers).json()["title"] == "Renamed"
    assert listed(api, headers) == [new, old]  # a rename is not activity
    r = api.client.patch(f"{BASE}/{old}", json={"title": "   "}, headers=headers)
    assert r.status_code == 200 and r.json()["title"] == ""
    for body in ({"title": "x" * 201}, {}, {"title": None}, {"title": 5}, {"title": "a\x00b"}):
        r = api.client.patch(f"{BASE}/{old}", json=body, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", body
    r = api.client.patch(f"{BASE}/{old}", json={"title": " " + "y" * 200 + " "}, headers=headers)
    assert r.status_code == 200 and r.json()["title"] == "y" * 200


def test_title_validation_on_create(api: Api) -> None:
    headers = api.setup_admin()
    assert new_thread(api, headers, "   ")["title"] == ""
    assert new_thread(api, headers, "z" * 200)["title"] == "z" * 200
    for body in ({"title": "z" * 201}, {"title": ["list"]}, [1, 2]):
        r = api.client.post(BASE, json=body, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", body
    assert len(listed(api, headers)) == 2


def test_delete_removes_thread_and_its_messages(api: Api) -> None:
    headers = api.setup_admin()
    doomed, kept = new_thread(api, headers, "doomed")["id"], new_thread(api, headers)["id"]
    chat(api, headers, "forget this", doomed)
    chat(api, headers, "and this", doomed)
    chat(api, headers, "keep this", kept)
    r = api.client.delete(f"{BASE}/{doomed}", headers=headers)
    assert r.status_code == 204 and r.content == b""
    for path in (f"{BASE}/{doomed}", f"{BASE}/{doomed}/messages"):
        r = api.client.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.client.delete(f"{BASE}/{doomed}", headers=headers).status_code == 404
    assert listed(api, headers) == [kept]
    history = api.client.get("/api/v1/conversation/history", headers=headers).json()
    assert [h["query"] for h in history] == ["keep this"]
    assert search(api, headers, "forget") == []
    stored = run_db(api, lambda s: s.scalar(select(func.count()).where(Turn.thread_id == doomed)))
    assert stored == 0


def test_messages_oldest_first_paginated_without_superseded(api: Api) -> None:
    headers = api.setup_admin()
    thread = new_thread(api, headers)["id"]
    sent = [chat(api, headers, f"message {i}", thread) for i in range(5)]
    items = walk(api, headers, f"{BASE}/{thread}/messages", 2)
    assert [m["query"] for m in items] == [f"message {i}" for i in range(5)]
    assert [m["turn_id"] for m in items] == [s["turn_id"] for s in sent]
    first = items[0]
    assert set(first) == {
        "turn_id",
        "query",
        "response",
        "status",
        "created_at",
        "model",
        "confidence",
        "prompt_tokens",
        "completion_tokens",
        "citations",
        "feedback",
        "adapter_version",
    }
    assert first["adapter_version"] is None  # no adapter active: the base model
    assert first["citations"] == []  # no documents: nothing cited
    assert first["feedback"] is None  # not rated
    assert first["response"] == REPLY and first["status"] == "completed"
    assert first["model"] == "scripted-model" and first["confidence"] == pytest.approx(0.5)
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] == 6

    gone = sent[1]["turn_id"]
    run_db(
        api, lambda s: s.execute(update(Turn).where(Turn.id == gone).values(status="superseded"))
    )
    items = walk(api, headers, f"{BASE}/{thread}/messages", 100)
    assert [m["query"] for m in items] == ["message 0", "message 2", "message 3", "message 4"]
    assert api.client.get(f"{BASE}/{thread}", headers=headers).json()["message_count"] == 4
    assert listed(api, headers) == [thread]
    empty = api.client.get(f"{BASE}/{new_thread(api, headers)['id']}/messages", headers=headers)
    assert empty.json() == {"items": [], "next_cursor": None}


def check_search(api: Api, headers: dict[str, str]) -> None:
    """Search by title and by message text, with LIKE wildcards taken literally."""
    lisbon = new_thread(api, headers, "Holiday in Lisbon")["id"]
    bread = new_thread(api, headers, "kitchen")["id"]
    chat(api, headers, "How do I bake SOURDOUGH bread?", bread)
    titles = {t: new_thread(api, headers, t)["id"] for t in ("100% sure", "1000 sure")}
    titles |= {t: new_thread(api, headers, t)["id"] for t in ("snake_case", "snakeXcase", "a/b")}

    hits = search(api, headers, "lisbon")
    assert [h["id"] for h in hits] == [lisbon] and hits[0]["snippet"] == "Holiday in Lisbon"
    hits = search(api, headers, "  sourdough ")
    assert [h["id"] for h in hits] == [bread]
    assert hits[0]["snippet"] == "How do I bake SOURDOUGH bread?"
    assert hits[0]["message_count"] == 1 and hits[0]["title"] == "kitchen"
    hits = search(api, headers, "can I HELP")  # in the answer
    assert [h["id"] for h in hits] == [bread] and hits[0]["snippet"] == REPLY
    assert search(api, headers, "nowhere to be found") == []
    assert [h["id"] for h in search(api, headers, "%")] == [titles["100% sure"]]
    assert [h["id"] for h in search(api, headers, "0%")] == [titles["100% sure"]]
    assert [h["id"] for h in search(api, headers, "e_c")] == [titles["snake_case"]]
    assert [h["id"] for h in search(api, headers, "_")] == [titles["snake_case"]]
    assert [h["id"] for h in search(api, headers, "/")] == [titles["a/b"]]
    assert search(api, headers, "\\") == []
    walked = walk(api, headers, f"{BASE}/search", 2, q="s")
    assert [h["id"] for h in walked] == [h["id"] for h in search(api, headers, "s", limit=100)]
    assert len(walked) == len({h["id"] for h in walked}) == 6  # all but "a/b"


def check_pagination_with_ties(api: Api, headers: dict[str, str]) -> None:
    ids = [new_thread(api, headers, f"page {i}")["id"] for i in range(6)]
    set_updated_at(api, ids[1:4], datetime(2030, 1, 1, tzinfo=UTC))
    everything = listed(api, headers)
    assert everything[:3] == sorted(ids[1:4], reverse=True)
    for limit in (1, 2, 4):
        assert [t["id"] for t in walk(api, headers, BASE, limit)] == everything


def test_search_by_title_and_text_with_literal_wildcards(api: Api) -> None:
    check_search(api, api.setup_admin())


def test_search_snippet_is_short_and_around_the_match(api: Api) -> None:
    headers = api.setup_admin()
    thread = new_thread(api, headers)["id"]
    chat(api, headers, "lorem " * 100 + "the NEEDLE is here\n\n" + "ipsum " * 100, thread)
    (hit,) = search(api, headers, "needle")
    snippet = hit["snippet"]
    assert "the NEEDLE is here" in snippet and "\n" not in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert 120 <= len(snippet) <= 170


def test_search_query_validation(api: Api) -> None:
    headers = api.setup_admin()
    new_thread(api, headers, "x" * 200)
    for q in ("", "   ", "x" * 201, "a\x00b"):
        r = api.client.get(f"{BASE}/search", params={"q": q}, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", q
    r = api.client.get(f"{BASE}/search", headers=headers)  # not taken for a thread id
    assert r.status_code == 422
    assert len(search(api, headers, "  " + "x" * 200 + "  ")) == 1
    for limit in (0, 101):
        r = api.client.get(f"{BASE}/search", params={"q": "x", "limit": limit}, headers=headers)
        assert r.status_code == 422


def test_unicode_and_emoji_titles_round_trip(api: Api) -> None:
    headers = api.setup_admin()
    title = "Café ☕ 東京 🚀 👩‍💻 naïve «quotes» <b>&amp;</b>"
    thread = new_thread(api, headers, title)
    assert thread["title"] == title
    assert api.client.get(f"{BASE}/{thread['id']}", headers=headers).json()["title"] == title
    assert api.client.get(BASE, headers=headers).json()["items"][0]["title"] == title
    for q in ("🚀", "東京", "café"):
        assert [h["id"] for h in search(api, headers, q)] == [thread["id"]], q
    renamed = "🙂" * 200
    r = api.client.patch(f"{BASE}/{thread['id']}", json={"title": renamed}, headers=headers)
    assert r.status_code == 200 and r.json()["title"] == renamed


def test_another_user_sees_nothing(api: Api) -> None:
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    secret = new_thread(api, admin, "admin secret plans")["id"]
    chat(api, admin, "the launch code is swordfish", secret)
    missing = api.client.get(f"{BASE}/{'0' * 32}", headers=bob).json()
    assert missing["code"] == "not_found"
    attempts = [
        api.client.get(f"{BASE}/{secret}", headers=bob),
        api.client.get(f"{BASE}/{secret}/messages", headers=bob),
        api.client.patch(f"{BASE}/{secret}", json={"title": "mine now"}, headers=bob),
        api.client.delete(f"{BASE}/{secret}", headers=bob),
    ]
    for r in attempts:
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
        assert "secret plans" not in r.text
    assert listed(api, bob) == []
    assert search(api, bob, "secret") == [] and search(api, bob, "swordfish") == []
    mine = new_thread(api, bob, "bob's own")["id"]
    assert listed(api, bob) == [mine] and listed(api, admin) == [secret]
    still = api.client.get(f"{BASE}/{secret}", headers=admin).json()
    assert still["title"] == "admin secret plans" and still["message_count"] == 1


def test_every_route_requires_auth(api: Api) -> None:
    headers = api.setup_admin()
    thread = new_thread(api, headers)["id"]
    client = api.client
    responses = [
        client.post(BASE, json={"title": "x"}),
        client.get(BASE),
        client.get(f"{BASE}/search?q=x"),
        client.get(f"{BASE}/{thread}"),
        client.get(f"{BASE}/{thread}/messages"),
        client.patch(f"{BASE}/{thread}", json={"title": "x"}),
        client.delete(f"{BASE}/{thread}"),
        client.get(BASE, headers={"Authorization": "Bearer not-a-token"}),
    ]
    for r in responses:
        assert r.status_code == 401 and r.json()["code"] == "not_authenticated", r.request.url
    assert listed(api, headers) == [thread]


@pytest.mark.postgres
def test_threads_on_postgres(api_factory: Callable[..., Api], pg_database: str) -> None:
    api = api_factory(database_url=pg_database)
    admin = api.setup_admin()
    bob = api.create_user(admin, "bob")
    check_search(api, bob)
    check_pagination_with_ties(api, admin)
    assert search(api, admin, "sourdough") == []
    thread = listed(api, bob)[-1]
    assert api.client.delete(f"{BASE}/{thread}", headers=bob).status_code == 204
    assert api.client.get(f"{BASE}/{thread}", headers=bob).status_code == 404
