"""Issue 21: no user ever reads or changes another user's data.

Every route of the app is found at run time (tests/security/authz_routes.py), so a
new route joins the matrix by itself. Two users, A and B, each own one of every kind
of object, each text carrying a marker (tests/security/authz_world.py). Then:

- anonymous: 401 on every route but the documented public ones (the console's pages
  redirect to its login page); an API key where a token is expected, or a token where
  an API key is, counts as no credential;
- B on every admin route: 403;
- B on every route with an id, with each of A's ids and every method: 404;
- B with A's ids in query parameters and body fields, and on every list: no leak;
- no response to B holds a marker of A's (or of the admin's) or an id of A's that B
  did not send; A's objects read the same afterwards;
- WebSocket: B can neither resume, cancel nor regenerate A's answers, nor read A's
  thread, nor receive A's events.

Run with ``-s`` to see the matrix size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from mongars.app import create_app
from tests.conftest import Api, make_settings
from tests.security.authz_client import Matrix, snapshot, ws_session
from tests.security.authz_routes import (
    ESCALATE,
    ID_FIELDS,
    PATH_PARAMS,
    READER_FIELDS,
    Endpoint,
    endpoints,
    sample_body,
)
from tests.security.authz_world import (
    MarkerLLM,
    Person,
    World,
    make_admin_objects,
    make_user_objects,
    settle,
)

# Lists that must show B its own data: the positive control of the leak checks.
OWN_LISTS = {
    "/api/v1/threads",
    "/api/v1/memory",
    "/api/v1/memory/facts",
    "/api/v1/memory/export",
    "/api/v1/keys",
    "/api/v1/profile",
    "/api/v1/conversation/history",
    "/api/v1/collections",
    "/chat",
    "/memory",
}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[World]:
    settings = make_settings(
        tmp_path_factory.mktemp("authz"),
        memory={"enabled": True, "facts": True},
        research={"documents": True},
        scheduler={"enabled": True},
        peers={"enabled": True, "allow_http": True},
        public_url="http://127.0.0.1:9",
    )
    with TestClient(create_app(settings, llm=MarkerLLM(), embedder=embedder)) as client:
        api = Api(client)
        admin = Person("admin", api.setup_admin())
        people = []
        for name in ("alice", "bob"):
            api.create_user(admin.headers, name)
            person = Person(name, api.login(name))
            person.token = person.headers["Authorization"].removeprefix("Bearer ")
            person.add("username", name)
            make_user_objects(api, person)
            people.append(person)
        for person in people:
            settle(api, person)
        make_admin_objects(api, admin, client.portal)
        yield World(api, admin, people[0], people[1])


def test_no_user_reaches_another_users_data(world: World) -> None:
    m = Matrix(world)
    eps = endpoints(world.api.client.app)  # type: ignore[arg-type]
    assert len(eps) > 150, "the route enumeration found too few routes"
    for ep in eps:  # the admin areas and the admin dependency agree
        if ep.admin_dependency and ep.access != "admin":
            m.problems.append(f"{ep}: requires an admin but is outside ADMIN_PREFIXES")
    before = snapshot(m, eps)
    for read in ("/api/v1/threads/", "/api/v1/memory/", "/api/v1/training/datasets/"):
        assert any(read in k and k.startswith("200") for k in before), (read, before.keys())
    own_lists: dict[str, str] = {}  # B's plain GETs and searches

    for ep in eps:
        if ep.method == "WS":
            check_websocket_anonymous(m, ep)
            continue
        first = m.path_values(ep)[0]
        # 1. no credentials, or the wrong kind of credential
        anon_expect = {"public": "any", "peer": "401"}.get(
            ep.access, "login" if ep.flavour == "html" else "401"
        )
        r = m.send(m.anonymous, ep, first, m.query(ep, probe=False))
        m.check(m.anonymous, ep, r, anon_expect)
        if ep.access in ("user", "admin") and ep.flavour in ("api", "openai"):
            wrong = m.b_token if ep.flavour == "openai" else m.b_key
            m.check(wrong, ep, m.send(wrong, ep, first, m.query(ep, probe=False)), "401")
        if ep.access == "public":
            continue
        b = {"html": m.b_console, "openai": m.b_key}.get(ep.flavour, m.b_token)
        ids = {f: m.a_value(f) for f in ID_FIELDS}
        # 2. admin routes: 403, whatever the ids
        if ep.access == "admin":
            admin = world.admin.ids
            admin_ids = {"run_id": admin["run"][0], "dataset_id": admin["dataset"][0]}
            r = m.send(b, ep, first, m.query(ep, probe=True), {**ids, **admin_ids})
            m.check(b, ep, r, "403")
            continue
        if ep.access == "peer":
            m.check(b, ep, m.send(b, ep, first, m.query(ep, probe=True), ids), "401")
            continue
        # 3. A's ids in the path, every method: 404
        if any(PATH_PARAMS[p][0] == "a" for p in ep.params):
            for values in m.path_values(ep):
                r = m.send(b, ep, values, m.query(ep, probe=True), ids)
                m.check(b, ep, r, "404")
            continue
        # 4. A's ids in queries and bodies; lists and searches: nothing of A's
        body = set(sample_body(ep.body, ids)) if ep.body is not None else set()
        for name in [q for q, _ in ep.query if q in ID_FIELDS or q in ESCALATE]:
            m.check(b, ep, m.send(b, ep, first, m.query(ep, probe=name)), "any")
        if body & set(ID_FIELDS):
            m.check(b, ep, m.send(b, ep, first, m.query(ep, probe=False), ids), "any")
        if ep.method == "GET" or body & READER_FIELDS:
            r = m.send(b, ep, first, m.query(ep, probe=False))
            m.check(b, ep, r, "any")
            own_lists[ep.path] = r.text
    # 5. the methods a path with A's ids does not declare: nothing either
    declared: dict[str, set[str]] = {}
    for ep in eps:
        declared.setdefault(ep.path, set()).add(ep.method)
    for ep in eps:
        if ep.access != "user" or not any(PATH_PARAMS[p][0] == "a" for p in ep.params):
            continue
        b = {"html": m.b_console, "openai": m.b_key}.get(ep.flavour, m.b_token)
        for method in sorted(METHODS - declared[ep.path]):
            declared[ep.path].add(method)
            other = replace(ep, method=method, body=None, form=False)
            r = m.send(b, other, m.path_values(ep)[0])
            m.check(b, other, r, "any")
            if r.status_code < 400:
                m.problems.append(f"{b.name}: {method} {r.request.url}: {r.status_code}")

    # B's lists do show B's own objects (else "no leak" would prove nothing).
    assert set(own_lists) >= OWN_LISTS, OWN_LISTS - set(own_lists)
    for path in OWN_LISTS:
        text = own_lists[path]
        if not any(marker in text for marker in world.b.markers):
            m.problems.append(f"B's own list {path} shows none of B's objects: {text[:300]}")
    # A's objects are as they were.
    after = snapshot(m, eps)
    for url in sorted(set(before) | set(after)):
        if before.get(url) != after.get(url):
            m.problems.append(f"A's data changed: {url}: {before.get(url)} -> {after.get(url)}")

    total = sum(m.sent.values())
    counts = ", ".join(f"{name} {n}" for name, n in sorted(m.sent.items()))
    print(
        f"\nauthz matrix: {total} requests over {len(eps)} route-methods "
        f"({len({ep.path for ep in eps})} paths); {counts}; {len(m.problems)} problems"
    )
    assert not m.problems, "\n".join(m.problems)


def check_websocket_anonymous(m: Matrix, ep: Endpoint) -> None:
    for url in (ep.path, f"{ep.path}?t=not-a-ticket", f"{ep.path}?t={m.world.b.token}"):
        m.sent["anonymous"] += 1
        with ws_session(m.client, url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        if closed.value.code != 4401:
            m.problems.append(f"anonymous: WS {url}: closed {closed.value.code}, expected 4401")


def ws_ticket(world: World, who: Person) -> str:
    r = world.client.post("/api/v1/auth/ws/ticket", headers=who.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["ticket"])


def until_ack(ws: Any, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        message = ws.receive_json()
        seen.append(message)
        if message.get("type") == "ack" and message.get("for") == kind:
            return dict(message)


def test_websocket_keeps_users_apart(world: World) -> None:
    m = Matrix(world)
    a, b = world.a, world.b
    thread, generation = a.ids["thread"][0], a.ids["generation"][0]
    messages = f"/api/v1/threads/{thread}/messages?limit=100"
    before = world.client.get(messages, headers=a.headers).json()
    seen: list[dict[str, Any]] = []
    url = f"/ws/chat?t={ws_ticket(world, b)}&thread_id={thread}"
    with ws_session(world.client, url) as ws:
        seen += [ws.receive_json(), ws.receive_json()]
        shown = seen[-1]
        assert shown["type"] == "history.snapshot", shown
        assert shown["thread_id"] is None and shown["messages"] == [], shown
        attempts = [
            {"type": "chat.resume", "id": "r", "generation_id": generation, "last_index": -1},
            {"type": "chat.cancel", "id": "c", "generation_id": generation},
            {"type": "chat.regenerate", "client_id": "g", "thread_id": thread},
            {"type": "chat.send", "client_id": "s", "thread_id": thread, "message": "B probe"},
        ]
        for attempt in attempts:
            ws.send_json(attempt)
            ack = until_ack(ws, attempt["type"], seen)
            assert ack["ok"] is False and ack["error"]["code"] == "not_found", (attempt, ack)
        # A talks while B listens: nothing of A's reaches B's connection.
        said = a.mark("live")
        chat = {"message": f"Live {said}", "session_id": thread}
        r = world.client.post("/api/v1/conversation/chat", json=chat, headers=a.headers)
        assert r.status_code == 200 and said in r.text, r.text
        ws.send_json({"type": "pong", "id": "drain"})
        until_ack(ws, "pong", seen)
    m.check_text("B's WebSocket", json.dumps(seen), sent=f"{thread} {generation}")
    after = world.client.get(messages, headers=a.headers).json()
    assert after["items"][: len(before["items"])] == before["items"]
    assert len(after["items"]) == len(before["items"]) + 1  # A's own new turn only
    assert not m.problems, "\n".join(m.problems)
