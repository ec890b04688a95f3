"""The event bus: fan-out of generation events to a user's connections, plus a
replayable log per generation so a client that reconnects gets what it missed.

In-process by default; with Redis configured, events go through Redis pub/sub
(one channel per user) and Redis Streams (one stream per generation), so a
generation running in one API process reaches sockets held by another.
Events are JSON objects with at least ``type``, ``generation_id``, ``user_id``
and ``index`` (0, 1, 2, ... within a generation). Control messages (type
``control.*``, e.g. a cancel asked on another process) are not logged and
carry no index; a subscriber that wants only those (``control_only``, the
cancel watcher of each generation) is not woken by every streamed delta.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
TERMINAL = frozenset({"chat.completed", "chat.cancelled", "chat.error"})
LOG_TTL_S = 600  # finished generations stay replayable this long...
# ... in process, the newest of them up to this many events in all (~10 MB): at a
# hundred answers a second, ten minutes of them held 1 GB (`mongars bench load`).
MAX_LOG_EVENTS = 20_000


class EventBus(ABC):
    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Append to the generation's log, then deliver to the user's subscribers."""

    @abstractmethod
    async def signal(self, user_id: int, message: Event) -> None:
        """Deliver a control message (not logged, no index) to the user's subscribers."""

    @abstractmethod
    async def replay(self, generation_id: str, after: int = -1) -> list[Event]:
        """Logged events of a generation with index > after (empty if unknown)."""

    @abstractmethod
    def subscribe(self, user_id: int, control_only: bool = False) -> Any:
        """``async with bus.subscribe(uid) as events``: live events for one user
        (with ``control_only``, only what :meth:`signal` sends)."""


@dataclass
class _Log:
    events: list[Event] = field(default_factory=list)
    finished_at: float | None = None


class InProcessBus(EventBus):
    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._finished: deque[tuple[float, str]] = deque()  # (finished_at, id), in order
        self._finished_events = 0
        # Unbounded: each consumer (a socket, an SSE response) applies its own bound.
        self._subscribers: dict[int, set[asyncio.Queue[Event]]] = {}
        self._controls: dict[int, set[asyncio.Queue[Event]]] = {}  # control_only ones

    async def publish(self, event: Event) -> None:
        log = self._logs.setdefault(event["generation_id"], _Log())
        log.events.append(event)
        if event["type"] in TERMINAL and log.finished_at is None:
            log.finished_at = time.monotonic()
            self._finished.append((log.finished_at, event["generation_id"]))
            self._finished_events += len(log.events)
            self._expire()
        for queue in list(self._subscribers.get(event["user_id"], ())):
            queue.put_nowait(event)

    async def signal(self, user_id: int, message: Event) -> None:
        for queue in [*self._subscribers.get(user_id, ()), *self._controls.get(user_id, ())]:
            queue.put_nowait(message)

    async def replay(self, generation_id: str, after: int = -1) -> list[Event]:
        log = self._logs.get(generation_id)
        return [e for e in log.events if e["index"] > after] if log else []

    @asynccontextmanager
    async def subscribe(
        self, user_id: int, control_only: bool = False
    ) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        registry = self._controls if control_only else self._subscribers
        registry.setdefault(user_id, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            subscribers = registry.get(user_id, set())
            subscribers.discard(queue)
            if not subscribers:
                registry.pop(user_id, None)

    def _expire(self) -> None:
        """Drop the oldest finished logs past the TTL or the size bound (oldest first,
        so each publish costs what it drops, not a scan of every log)."""
        cutoff = time.monotonic() - LOG_TTL_S
        while self._finished and (
            self._finished[0][0] < cutoff or self._finished_events > MAX_LOG_EVENTS
        ):
            _, gen_id = self._finished.popleft()
            log = self._logs.pop(gen_id, None)
            self._finished_events -= len(log.events) if log else 0


async def _drain(queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        yield await queue.get()


class RedisBus(EventBus):
    """Redis pub/sub for live fan-out, Redis Streams for the replayable logs.

    Two channels per user: events, and control messages (which every subscriber
    hears; ``control_only`` subscribers hear nothing else)."""

    def __init__(self, url: str, prefix: str = "mongars") -> None:
        self._url = url
        self._prefix = prefix
        self._redis: Any = None

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self._url, decode_responses=True)
        await self._redis.ping()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    def _stream(self, generation_id: str) -> str:
        return f"{self._prefix}:gen:{generation_id}"

    def _channel(self, user_id: int) -> str:
        return f"{self._prefix}:user:{user_id}"

    def _control(self, user_id: int) -> str:
        return f"{self._prefix}:control:{user_id}"

    async def publish(self, event: Event) -> None:
        data = json.dumps(event, ensure_ascii=False)
        stream = self._stream(event["generation_id"])
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream, {"e": data})
            pipe.expire(stream, LOG_TTL_S)
            pipe.publish(self._channel(event["user_id"]), data)
            await pipe.execute()

    async def signal(self, user_id: int, message: Event) -> None:
        await self._redis.publish(self._control(user_id), json.dumps(message))

    async def replay(self, generation_id: str, after: int = -1) -> list[Event]:
        entries = await self._redis.xrange(self._stream(generation_id))
        events = [json.loads(fields["e"]) for _, fields in entries]
        return [e for e in events if e["index"] > after]

    @asynccontextmanager
    async def subscribe(
        self, user_id: int, control_only: bool = False
    ) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        channels = [self._control(user_id)]
        if not control_only:
            channels.append(self._channel(user_id))
        await pubsub.subscribe(*channels)
        try:
            yield _listen(pubsub)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()


async def _listen(pubsub: Any) -> AsyncIterator[Event]:
    async for message in pubsub.listen():
        if message.get("type") == "message":
            yield json.loads(message["data"])


def create_bus(redis_url: str) -> EventBus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
