"""The clients of `mongars bench crash`: they chat, upload and rate until the server dies,
and write down every request with what must be stored, and whether it was acknowledged.

Acknowledged means: the chat returned 200, the SSE ``done`` event or the WebSocket
``chat.completed`` event arrived, an upload returned 201, feedback 200, a job run 202.
An acknowledgement must carry exactly what was sent and what the echo model answers;
one that does not is recorded as ``bad_ack`` (a violation of its own).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from mongars.bench.loadserver import echo_answer

CHAT = "/api/v1/conversation/chat"
COLLECTION = "crash"
JOBS = ("memory.index", "cache.warm")
# Words of the generated messages and documents: accents, CJK and emoji included, so
# that "exact text" covers more than ASCII. Random picks keep turns far apart for the
# memory's near-duplicate merging.
VOCABULARY = (
    "amber basil cobalt delta ember fjord granite harbour indigo juniper kestrel lagoon "
    "meadow nectar orchard pebble quartz raven saffron thistle umber velvet willow xenon "
    "yarrow zephyr café naïve façade smörgåsbord jalapeño über 東京 數據 記憶 🚀 🌲 ∑ "
    "crimson lantern marble nutmeg olive pepper quiver ripple sable tundra"
).split()


@dataclass
class TurnAttempt:
    tag: str
    user: str
    channel: str  # rest | sse | ws
    message: str
    acked: bool = False
    turn_id: int | None = None
    bad_ack: str = ""  # what was wrong with the acknowledgement

    @property
    def expected(self) -> str:
        return echo_answer(self.message)


@dataclass
class DocAttempt:
    user: str
    path: str
    data: bytes
    acked: bool = False
    bad_ack: str = ""


@dataclass
class FeedbackAttempt:
    user: str
    turn_id: int
    rating: str
    comment: str
    acked: bool = False


@dataclass
class JobAttempt:
    run_id: str
    name: str


@dataclass
class Ledger:
    """Everything the clients sent, over every round."""

    turns: list[TurnAttempt] = field(default_factory=list)
    docs: list[DocAttempt] = field(default_factory=list)
    feedback: list[FeedbackAttempt] = field(default_factory=list)
    jobs: list[JobAttempt] = field(default_factory=list)
    # requests that failed while the server was up: "action: status or exception"
    errors: Counter[str] = field(default_factory=Counter)
    kills: list[datetime] = field(default_factory=list)  # when each SIGKILL was sent (UTC)


@dataclass
class Account:
    name: str
    token: str
    rated: set[int] = field(default_factory=set)  # turns already given feedback

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Client:
    """One simulated user session: a random mix of actions until stopped."""

    def __init__(
        self,
        base_url: str,
        account: Account,
        ledger: Ledger,
        rng: random.Random,
        tag: str,
        stop: asyncio.Event,
    ) -> None:
        self.base_url = base_url
        self.stop = stop  # set just before the kill: nothing new starts after it
        self.ws_url = base_url.replace("http://", "ws://") + "/ws/chat"
        self.account = account
        self.ledger = ledger
        self.rng = rng
        self.tag = tag
        self.thread = f"crash-{tag}"  # one thread per client and round: history grows
        self.count = 0

    async def run(self, opening: int = 0) -> None:
        """Random actions; the first is ``opening`` (an index), so that clients 0-4
        cover every kind of request early in each round, whenever the kill comes."""
        actions = (self.rest_chat, self.sse_chat, self.ws_chat, self.upload, self.rate)
        weights = (30, 25, 20, 10, 15)
        action = actions[opening % len(actions)]
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.account.headers, timeout=60
        ) as http:
            while not self.stop.is_set():
                try:
                    await action(http)
                except (httpx.HTTPError, WebSocketException, OSError, ValueError, KeyError) as exc:
                    self._failed(f"{action.__name__}: {type(exc).__name__}")
                action = self.rng.choices(actions, weights)[0]

    def _next(self) -> str:
        self.count += 1
        return f"{self.tag}n{self.count:03d}"

    def _turn(self, channel: str) -> TurnAttempt:
        tag = self._next()
        words = self.rng.choices(VOCABULARY, k=self.rng.randint(6, 14))
        attempt = TurnAttempt(tag, self.account.name, channel, f"crash {tag} {' '.join(words)}")
        self.ledger.turns.append(attempt)
        return attempt

    def _session(self) -> str | None:
        return self.thread if self.rng.random() < 0.7 else None  # else a new thread

    def _failed(self, what: str) -> None:
        if not self.stop.is_set():  # while the server is up: not the kill's doing
            self.ledger.errors[what] += 1

    @staticmethod
    def _acknowledge(attempt: TurnAttempt, body: dict[str, Any]) -> None:
        attempt.acked = True
        attempt.turn_id = int(body["turn_id"])
        if body.get("response") != attempt.expected:
            attempt.bad_ack = f"acknowledged text {body.get('response')!r}"

    async def rest_chat(self, http: httpx.AsyncClient) -> None:
        attempt = self._turn("rest")
        body = {"message": attempt.message, "session_id": self._session()}
        r = await http.post(CHAT, json=body)
        if r.status_code == 200:
            self._acknowledge(attempt, r.json())
        else:
            self._failed(f"rest_chat: HTTP {r.status_code}")

    async def sse_chat(self, http: httpx.AsyncClient) -> None:
        attempt = self._turn("sse")
        body = {"message": attempt.message, "session_id": self._session()}
        deltas: list[str] = []
        async with aconnect_sse(http, "POST", f"{CHAT}/stream", json=body) as source:
            if source.response.status_code != 200:
                return self._failed(f"sse_chat: HTTP {source.response.status_code}")
            async for event in source.aiter_sse():
                if event.event == "delta":
                    deltas.append(json.loads(event.data)["text"])
                elif event.event == "done":
                    done = json.loads(event.data)
                    self._acknowledge(attempt, done)
                    if "".join(deltas) != done["response"]:
                        attempt.bad_ack = "the streamed deltas differ from the done event"
                    return
                elif event.event in ("error", "cancelled"):
                    return self._failed(f"sse_chat: {event.event} event")
        self._failed("sse_chat: the stream ended without its done event")

    async def ws_chat(self, http: httpx.AsyncClient) -> None:
        r = await http.post("/api/v1/auth/ws/ticket")
        if r.status_code != 200:
            return self._failed(f"ws_chat: ticket HTTP {r.status_code}")
        attempt = self._turn("ws")
        async with connect(f"{self.ws_url}?t={r.json()['ticket']}", open_timeout=30) as ws:
            frame: dict[str, Any] = {
                "type": "chat.send",
                "message": attempt.message,
                "client_id": attempt.tag,
            }
            if (session := self._session()) is not None:
                frame["thread_id"] = session
            await ws.send(json.dumps(frame))
            end = await _ws_end(ws, attempt.tag)
        if end.get("type") == "chat.completed":  # its event names the answer "text"
            self._acknowledge(attempt, {"turn_id": end["turn_id"], "response": end["text"]})
        else:
            self._failed(f"ws_chat: {end.get('type', 'closed')} {end.get('code', '')}".strip())

    async def upload(self, http: httpx.AsyncClient) -> None:
        tag = self._next()
        paragraphs = [
            " ".join(self.rng.choices(VOCABULARY, k=self.rng.randint(40, 90))) + "."
            for _ in range(self.rng.randint(3, 9))
        ]
        text = f"# Crash document {tag}\n\n" + "\n\n".join(paragraphs) + "\n"
        attempt = DocAttempt(self.account.name, f"{tag}.md", text.encode())
        self.ledger.docs.append(attempt)
        r = await http.post(
            "/api/v1/documents",
            files={"file": (attempt.path, attempt.data, "text/markdown")},
            data={"collection": COLLECTION},
        )
        if r.status_code != 201:
            self._failed(f"upload: HTTP {r.status_code}")
        else:
            attempt.acked = True
            document = r.json()["document"]
            if document["path"] != attempt.path or document["chunks"] < 1:
                attempt.bad_ack = f"acknowledged {document['path']!r}, {document['chunks']} chunks"

    async def rate(self, http: httpx.AsyncClient) -> None:
        mine = [
            t.turn_id
            for t in self.ledger.turns
            if t.acked and t.user == self.account.name and t.turn_id not in self.account.rated
        ]
        if not mine:
            return await self.rest_chat(http)
        turn_id = self.rng.choice(mine)
        assert turn_id is not None
        self.account.rated.add(turn_id)  # at most one rating per turn: one expected value
        attempt = FeedbackAttempt(
            self.account.name,
            turn_id,
            self.rng.choice(("up", "down")),
            f"feedback {self._next()} {self.rng.choice(VOCABULARY)}",
        )
        self.ledger.feedback.append(attempt)
        body = {"rating": attempt.rating, "comment": attempt.comment}
        r = await http.post(f"/api/v1/conversation/turns/{turn_id}/feedback", json=body)
        attempt.acked = r.status_code == 200
        if not attempt.acked:
            self._failed(f"rate: HTTP {r.status_code}")


async def _ws_end(ws: ClientConnection, client_id: str) -> dict[str, Any]:
    """How the generation sent as ``client_id`` ended: its ``chat.completed``, error or
    cancelled event, or the refused ack, or ``{}`` when the socket closed first (this
    socket carries every generation of the user's: the others are skipped)."""
    generation: str | None = None
    finished: dict[str, dict[str, Any]] = {}
    async for raw in ws:
        event = json.loads(raw)
        kind = event.get("type")
        if kind == "ack" and event.get("ref") == client_id:
            if not event.get("ok"):
                return {"type": "refused", "code": event.get("error", {}).get("code", "")}
            generation = event["generation_id"]
        elif kind in ("chat.completed", "chat.error", "chat.cancelled"):
            finished[event["generation_id"]] = event
        elif kind == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        if generation is not None and generation in finished:
            return finished[generation]
    return {}


class Admin:
    """Asks for job runs now and then; a 202 is an acknowledged run."""

    def __init__(
        self,
        base_url: str,
        account: Account,
        ledger: Ledger,
        rng: random.Random,
        stop: asyncio.Event,
    ) -> None:
        self.base_url = base_url
        self.account = account
        self.ledger = ledger
        self.rng = rng
        self.stop = stop

    async def run(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.account.headers, timeout=60
        ) as http:
            while not self.stop.is_set():
                await asyncio.sleep(self.rng.uniform(0.3, 1.0))
                name = self.rng.choice(JOBS)
                try:
                    r = await http.post(f"/api/v1/jobs/{name}/run")
                except httpx.HTTPError:
                    continue
                if r.status_code == 202:
                    self.ledger.jobs.append(JobAttempt(r.json()["id"], name))
                elif r.status_code != 409 and not self.stop.is_set():  # 409: one already runs
                    self.ledger.errors[f"job run: HTTP {r.status_code}"] += 1
