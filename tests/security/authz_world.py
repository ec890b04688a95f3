"""The objects of the authorization matrix: an admin and two users, A and B, who each
create one of every kind of object through the API, every text field carrying a
marker (``A-SECRET-<kind>-<hex>``) that B must never see."""

from __future__ import annotations

import json
import math
import re
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from mongars.db.engine import unit_of_work
from mongars.evolution.models import EvolutionDecision
from mongars.evolution.repository import EvolutionRepository
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.peers.models import Peer
from mongars.peers.repository import PeerRepository
from tests.adapters.factory import add_run
from tests.conftest import Api
from tests.fakes import ScriptedLLM

# A's markers start with A, B's with B, the admin's with Z.
MARK = re.compile(r"[ABZ]-SECRET-[a-z_]+-[0-9a-f]{10}")
OWNER = {"alice": "A", "bob": "B", "admin": "Z"}


def marker(owner: str, kind: str) -> str:
    return f"{owner}-SECRET-{kind}-{uuid.uuid4().hex[:10]}"


class MarkerLLM(ScriptedLLM):
    """Answers quote the marker of the user's message; fact extraction (a JSON schema
    in the parameters) returns one fact quoting it too, so answers and facts carry
    their owner's markers without any fixed script."""

    async def stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        self.calls.append(list(messages))
        users = [m.content for m in messages if m.role == "user"] or [""]
        own = MARK.findall(users[-1])
        if params.json_schema is not None:
            facts = [
                {"subject": m.split("-")[2], "text": f"Fact {m.replace('-SECRET-', '-SECRET-f')}"}
                for m in own[-1:]
            ]
            reply = json.dumps({"facts": facts})
            yield Delta(reply, [math.log(0.5)])
            yield Finish(prompt_tokens=1, completion_tokens=1, finish_reason="stop")
            return
        # No marker in the message: quote every one the context holds (memories,
        # documents, persona), so anything of another user's would show.
        found = own or MARK.findall(" ".join(m.content for m in messages))
        reply = f"Noted {' '.join(found)} then." if found else "Noted."
        for i, word in enumerate(reply.split(" ")):
            yield Delta(word if i == 0 else " " + word, [math.log(0.5)])
        yield Finish(prompt_tokens=1, completion_tokens=3, finish_reason="stop")


@dataclass
class Person:
    """A user's credentials and the ids of what they made (kind -> values)."""

    name: str
    headers: dict[str, str]
    token: str = ""
    api_key: str = ""
    ids: dict[str, list[Any]] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)

    def add(self, kind: str, value: Any) -> None:
        self.ids.setdefault(kind, []).append(value)

    def mark(self, kind: str) -> str:
        text = marker(OWNER[self.name], kind)
        self.markers.append(text)
        return text


@dataclass
class World:
    api: Api
    admin: Person
    a: Person
    b: Person

    @property
    def client(self) -> TestClient:
        return self.api.client


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), f"{r.request.method} {r.request.url}: {r.text}"
    return r.json() if r.content and "json" in r.headers.get("content-type", "") else None


def make_user_objects(api: Api, p: Person) -> None:
    """One of every kind of user-owned object, through the API."""
    c, h = api.client, p.headers
    thread = ok(c.post("/api/v1/threads", json={"title": p.mark("thread")}, headers=h))
    p.add("thread", thread["id"])
    chat = {"message": f"Remember {p.mark('turn')} please.", "session_id": thread["id"]}
    turn = ok(c.post("/api/v1/conversation/chat", json=chat, headers=h))
    p.add("turn", turn["turn_id"])
    question = {"message": f"What is the flux of {p.mark('gap')}?", "session_id": thread["id"]}
    p.add("turn", ok(c.post("/api/v1/conversation/chat", json=question, headers=h))["turn_id"])
    stream = {"message": f"And {p.mark('streamed')} too.", "session_id": thread["id"]}
    r = c.post("/api/v1/conversation/chat/stream", json=stream, headers=h)
    assert r.status_code == 200, r.text
    ids = re.findall(r"^id: (\S+):\d+$", r.text, re.M)
    assert ids, r.text
    p.add("generation", ids[0])
    note = ok(c.post("/api/v1/memory", json={"text": p.mark("memory")}, headers=h))
    p.add("memory", note["id"])
    name = f"coll-{secrets.token_hex(4)}"
    coll = {"name": name, "description": p.mark("collection")}
    p.add("collection", ok(c.post("/api/v1/collections", json=coll, headers=h))["id"])
    p.add("collection_name", name)
    text = f"# Notes\n\nThe vault code is {p.mark('document')}.\n".encode()
    files = {"file": ("notes.md", text)}
    doc = ok(c.post("/api/v1/documents", files=files, data={"collection": name}, headers=h))
    p.add("document", doc["document"]["id"])
    key = ok(c.post("/api/v1/keys", json={"name": p.mark("apikey")}, headers=h))
    p.add("apikey", key["id"])
    p.api_key = key["key"]
    body = {"model": "any", "messages": [{"role": "user", "content": p.mark("openai")}]}
    ok(c.post("/v1/chat/completions", json=body, headers=bearer(p.api_key)))
    feedback = {"rating": "up", "correction": p.mark("correction"), "comment": p.mark("comment")}
    ok(c.post(f"/api/v1/conversation/turns/{turn['turn_id']}/feedback", json=feedback, headers=h))
    profile = {"persona": p.mark("persona"), "allow_training": True}
    ok(c.put("/api/v1/profile", json=profile, headers=h))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def settle(api: Api, p: Person) -> None:
    """Background work on p's turns done: facts extracted, every memory embedded."""
    c, h = api.client, p.headers

    def facts() -> list[dict[str, Any]]:
        return list(c.get("/api/v1/memory/facts?include_past=true", headers=h).json())

    turns = len(p.ids["turn"]) + 2  # the streamed answer and the /v1 one
    wait_until(lambda: len(facts()) >= turns, f"{p.name}'s facts")
    for fact in facts():
        p.add("memory", fact["id"])
        p.markers.extend(MARK.findall(fact["text"]))

    def indexed() -> bool:
        items = c.get("/api/v1/memory?limit=100", headers=h).json()["items"]
        return all(m["indexed"] for m in items)

    wait_until(indexed, f"{p.name}'s memories embedded")


def make_admin_objects(api: Api, admin: Person, portal: Any) -> None:
    """Admin-side objects: a dataset (from the users' consented turns), a completed
    training run, its adapter version, an evolution decision, a peer, a job name."""
    c, h = api.client, admin.headers
    policy = {"policy": {"min_confidence": 0.0, "min_records": 1}}
    dataset = ok(c.post("/api/v1/training/datasets", json=policy, headers=h), 201)
    admin.add("dataset", dataset["id"])
    run_id = add_run(api.runtime, portal, admin.mark("adapter").encode())
    admin.add("run", run_id)
    version = ok(c.post("/api/v1/adapters/register", json={"run_id": run_id}, headers=h), 201)
    admin.add("adapter", version["id"])
    admin.add("adapter_sha256", version["sha256"])
    note = admin.mark("decision")
    node_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))
    admin.add("peer", node_id)

    async def insert() -> None:
        async with unit_of_work(api.runtime.sessions) as session:
            decision = EvolutionDecision(
                rule="authz", inputs={}, action="rollback_adapter", status="awaiting_approval"
            )
            decision.outcome = note
            admin.add("decision", (await EvolutionRepository(session).add(decision)).id)
            await PeerRepository(session).add(
                Peer(
                    node_id=node_id,
                    url="http://127.0.0.1:9",
                    state="requested",
                    sign_key="k" * 43,
                    kid="kid-" + node_id,
                    enc_key="e" * 43,
                    note=admin.mark("peer"),
                )
            )

    portal.call(insert)
    jobs = ok(c.get("/api/v1/jobs", headers=h))["items"]
    admin.add("job", next(j["name"] for j in jobs if j["name"] == "scheduler.gc"))
