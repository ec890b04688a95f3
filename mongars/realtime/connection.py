"""One WebSocket chat connection: protocol in docs/websocket.md.

Four tasks per connection: the reader (client messages, each acknowledged),
the writer (drains a bounded queue; overflow closes with 1013), the pump
(the user's events from the bus, de-duplicated per generation) and the
heartbeat (``ping``; silence past the timeout closes with 4408).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from fastapi import WebSocket
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.websockets import WebSocketDisconnect

from mongars.auth.models import User
from mongars.auth.ratelimit import UserRateLimiter
from mongars.conversation.schemas import SESSION_ID_PATTERN, MessageIn, check_new_thread_id
from mongars.errors import DomainError
from mongars.realtime.bus import Event
from mongars.runtime import Runtime

CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013
CLOSE_HEARTBEAT = 4408


class Close(Exception):
    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class ChatSend(MessageIn):
    thread_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    client_id: str | None = Field(default=None, max_length=100)

    _reserved = field_validator("thread_id")(check_new_thread_id)


class ChatRegenerate(BaseModel):
    thread_id: str = Field(pattern=SESSION_ID_PATTERN)
    client_id: str | None = Field(default=None, max_length=100)


class GenerationRef(BaseModel):
    generation_id: str = Field(min_length=1, max_length=64)
    last_index: int = Field(default=-1, ge=-1)


def parse_frame(raw: str) -> Any:
    """JSON as every client can read it back, or ValueError: no NaN or Infinity, no
    nesting deeper than the parser recurses, no lone surrogate (a message echoes its
    ``client_id``, and a surrogate cannot be sent as UTF-8)."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    json.dumps(data, ensure_ascii=False).encode()  # UnicodeEncodeError is a ValueError
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class ChatConnection:
    def __init__(
        self, ws: WebSocket, runtime: Runtime, user: User, limiter: UserRateLimiter
    ) -> None:
        self.ws = ws
        self.runtime = runtime
        self.user = user
        self.limiter = limiter
        self.settings = runtime.settings.realtime
        self.id = uuid.uuid4().hex
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.settings.queue_size)
        self.sent_index: dict[str, int] = {}
        self.last_seen = time.monotonic()

    # -- outgoing ---------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            raise Close(CLOSE_TRY_LATER, "client too slow: send queue full") from None

    def send_event(self, event: Event) -> None:
        """Send a generation event once per connection, in order (replays included)."""
        gen = event["generation_id"]
        if event["index"] <= self.sent_index.get(gen, -1):
            return
        self.sent_index[gen] = event["index"]
        self.send({k: v for k, v in event.items() if k not in ("user_id", "result")})

    def ack(self, kind: str, ref: Any, ok: bool = True, **extra: Any) -> None:
        self.send({"type": "ack", "for": kind, "ref": ref, "ok": ok, **extra})

    def fail(self, kind: str, ref: Any, code: str, detail: str) -> None:
        self.ack(kind, ref, ok=False, error={"code": code, "detail": detail})

    # -- lifecycle --------------------------------------------------------------

    async def run(self, snapshot: dict[str, Any]) -> None:
        self.send(
            {
                "type": "ws.connected",
                "connection_id": self.id,
                "user": self.user.username,
                "heartbeat_s": self.settings.heartbeat_s,
            }
        )
        self.send(
            {
                "type": "history.snapshot",
                **snapshot,
                "running": self.runtime.hub.running_for(self.user.id),
            }
        )
        async with self.runtime.bus.subscribe(self.user.id) as live:
            tasks = [
                asyncio.create_task(self._reader()),
                asyncio.create_task(self._writer()),
                asyncio.create_task(self._pump(live)),
                asyncio.create_task(self._heartbeat()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        error = next((t.exception() for t in done if not t.cancelled() and t.exception()), None)
        if isinstance(error, Close):
            await self._close(error.code, error.reason)
        elif error is not None and not isinstance(error, WebSocketDisconnect):
            await self._close(1011, "internal error")
            raise error

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed by the client
            await self.ws.close(code=code, reason=reason[:120])

    async def _writer(self) -> None:
        while True:
            message = await self.queue.get()
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))

    async def _pump(self, live: Any) -> None:
        async for event in live:
            if "index" in event:  # control messages (no index) are not for clients...
                self.send_event(event)
            elif event.get("notice"):  # ... but notices are (sleep_time_compute.* to admins)
                self.send({k: v for k, v in event.items() if k != "notice"})

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            if time.monotonic() - self.last_seen > self.settings.heartbeat_timeout_s:
                raise Close(CLOSE_HEARTBEAT, "heartbeat timeout: no message from the client")
            self.send({"type": "ping", "ts": time.time()})

    # -- incoming ---------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            self.last_seen = time.monotonic()
            if len(raw.encode()) > self.settings.max_frame_bytes:
                raise Close(CLOSE_TOO_BIG, f"frame over {self.settings.max_frame_bytes} bytes")
            try:
                data = parse_frame(raw)
            except ValueError:
                self.send(
                    {
                        "type": "error",
                        "code": "invalid_json",
                        "detail": "frames must be JSON objects",
                    }
                )
                continue
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                self.send(
                    {
                        "type": "error",
                        "code": "invalid_message",
                        "detail": "a message is a JSON object with a string 'type'",
                    }
                )
                continue
            await self._dispatch(data)

    async def _dispatch(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        ref = data.get("client_id", data.get("id"))
        handler = {
            "chat.send": self._on_send,
            "chat.regenerate": self._on_regenerate,
            "chat.cancel": self._on_cancel,
            "chat.resume": self._on_resume,
            "pong": self._on_pong,
        }.get(kind)
        if handler is None:
            self.fail(kind, ref, "unknown_type", f"unknown message type {kind!r}")
            return
        scheduler = self.runtime.scheduler
        if scheduler is not None and kind != "pong":  # a user's message, not a heartbeat
            scheduler.activity.note()
            await scheduler.activity.share()
        try:
            await handler(data, ref)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            self.fail(kind, ref, "invalid_input", detail)
        except DomainError as exc:
            self.fail(kind, ref, exc.code, exc.detail)

    async def _rate_limited(self, kind: str, ref: Any) -> bool:
        if await self.limiter.hit(self.user.id):
            return False
        detail = f"too many messages; the limit is {self.limiter.rate} per user"
        self.send(
            {"type": "chat.error", "code": "rate_limited", "detail": detail, "client_id": ref}
        )
        self.fail(kind, ref, "rate_limited", detail)
        return True

    async def _on_send(self, data: dict[str, Any], ref: Any) -> None:
        body = ChatSend.model_validate(data)
        if await self._rate_limited("chat.send", ref):
            return
        started = await self.runtime.hub.start(
            self.user, body.message, body.thread_id, client_id=body.client_id
        )
        self.ack("chat.send", ref, generation_id=started.generation_id, thread_id=started.thread_id)

    async def _on_regenerate(self, data: dict[str, Any], ref: Any) -> None:
        body = ChatRegenerate.model_validate(data)
        if await self._rate_limited("chat.regenerate", ref):
            return
        started = await self.runtime.hub.start(
            self.user, None, body.thread_id, regenerate=True, client_id=body.client_id
        )
        self.ack(
            "chat.regenerate", ref, generation_id=started.generation_id, thread_id=started.thread_id
        )

    async def _on_cancel(self, data: dict[str, Any], ref: Any) -> None:
        body = GenerationRef.model_validate(data)
        if await self.runtime.hub.cancel(self.user, body.generation_id):
            self.ack("chat.cancel", ref, generation_id=body.generation_id)
        else:
            self.fail("chat.cancel", ref, "not_found", "no running generation with that id")

    async def _on_resume(self, data: dict[str, Any], ref: Any) -> None:
        body = GenerationRef.model_validate(data)
        events = await self.runtime.bus.replay(body.generation_id, body.last_index)
        logged = events or await self.runtime.bus.replay(body.generation_id)
        if not logged or logged[0]["user_id"] != self.user.id:
            self.fail("chat.resume", ref, "not_found", "no such generation (or expired)")
            return
        self.sent_index[body.generation_id] = min(
            self.sent_index.get(body.generation_id, body.last_index), body.last_index
        )
        self.ack("chat.resume", ref, generation_id=body.generation_id, replayed=len(events))
        for event in events:
            self.send_event(event)

    async def _on_pong(self, data: dict[str, Any], ref: Any) -> None:
        self.ack("pong", ref)
