"""Generations that outlive their request.

A turn started over SSE, WebSocket or plain HTTP runs as a tracked task owned
by the app, publishing numbered events to the event bus. Clients watch those
events and may leave and come back (replaying what they missed); the answer
is stored exactly once whoever watches. Only an explicit cancel (or shutdown)
stops a generation; the part generated so far is then stored as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from sqlalchemy.exc import TimeoutError as PoolTimeout

from mongars.auth.models import User
from mongars.conversation.service import ChatService, PreparedTurn, TurnDelta, TurnDone
from mongars.errors import POOL_EXHAUSTED, DomainError, InternalError, NotFound
from mongars.realtime.bus import TERMINAL, Event, EventBus
from mongars.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Started:
    generation_id: str
    thread_id: str


@dataclass
class _Running:
    task: asyncio.Task[None]
    user_id: int
    thread_id: str


class GenerationHub:
    def __init__(self, runtime: Runtime, bus: EventBus) -> None:
        self.runtime = runtime
        self.bus = bus
        self._running: dict[str, _Running] = {}

    def running_for(self, user_id: int) -> list[dict[str, str]]:
        return [
            {"generation_id": gid, "thread_id": r.thread_id}
            for gid, r in self._running.items()
            if r.user_id == user_id
        ]

    async def start(
        self,
        user: User,
        message: str | None,
        thread_id: str | None,
        *,
        regenerate: bool = False,
        client_id: str | None = None,
        image: bytes | None = None,
    ) -> Started:
        """Validate and prepare (domain errors raise here), then generate in the background."""
        service = ChatService(self.runtime)
        if regenerate:
            if thread_id is None:
                raise NotFound("regenerate needs a thread_id")
            turn = await service.prepare_regenerate(user, thread_id)
        else:
            turn = await service.prepare(user, message or "", thread_id, image=image)
        generation_id = uuid.uuid4().hex
        turn.generation_id = generation_id
        await self.bus.publish(
            self._event(turn, 0, "chat.started", client_id=client_id, regenerate=regenerate)
        )
        # Listen for a cancel asked on another process before generating anything.
        ready = asyncio.Event()
        task = asyncio.create_task(
            self._guarded(service, turn, ready), name=f"generation-{generation_id}"
        )
        self._running[generation_id] = _Running(task, user.id, turn.thread_id)
        task.add_done_callback(lambda _: self._running.pop(generation_id, None))
        await ready.wait()
        return Started(generation_id, turn.thread_id)

    async def cancel(self, user: User, generation_id: str) -> bool:
        """Stop a running generation of this user, on this process or another one
        (through the bus); False if the user has no such generation running."""
        running = self._running.get(generation_id)
        if running is not None and running.user_id == user.id:
            running.task.cancel()
            await asyncio.gather(running.task, return_exceptions=True)
            return True
        logged = await self.bus.replay(generation_id)
        if not logged or logged[0]["user_id"] != user.id or logged[-1]["type"] in TERMINAL:
            return False
        await self.bus.signal(
            user.id, {"type": "control.cancel", "generation_id": generation_id, "user_id": user.id}
        )
        return True

    async def close(self) -> None:
        """Shutdown: stop every generation; partial answers are stored as cancelled."""
        tasks = [r.task for r in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded(
        self, service: ChatService, turn: PreparedTurn, ready: asyncio.Event
    ) -> None:
        """Run the generation while watching the bus for a remote cancel."""
        me = asyncio.current_task()
        assert me is not None

        async def watch_cancel() -> None:
            async with self.bus.subscribe(turn.user_id, control_only=True) as live:
                ready.set()
                async for message in live:
                    if (
                        message["type"] == "control.cancel"
                        and message["generation_id"] == turn.generation_id
                    ):
                        me.cancel()
                        return

        watcher = asyncio.create_task(watch_cancel())
        watcher.add_done_callback(lambda _: ready.set())
        try:
            await self._run(service, turn)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _run(self, service: ChatService, turn: PreparedTurn) -> None:
        index = 0
        text: list[str] = []
        try:
            async with aclosing(service.run(turn)) as events:
                async for event in events:
                    index += 1
                    if isinstance(event, TurnDelta):
                        text.append(event.text)
                        await self.bus.publish(
                            self._event(turn, index, "chat.delta", text=event.text)
                        )
                    elif isinstance(event, TurnDone):
                        await self.bus.publish(self._completed(turn, index, event))
        except DomainError as exc:
            await self.bus.publish(
                self._event(turn, index + 1, "chat.error", detail=exc.detail, code=exc.code)
            )
        except asyncio.CancelledError:
            await self.bus.publish(
                self._event(turn, index + 1, "chat.cancelled", text="".join(text))
            )
        except PoolTimeout:  # every database connection stayed busy: overload, not a bug
            log.warning("generation %s not stored: database pool exhausted", turn.generation_id)
            await self.bus.publish(
                self._event(turn, index + 1, "chat.error", detail=POOL_EXHAUSTED, code="overloaded")
            )
        except Exception:  # a bug must still end the stream for its watchers
            log.exception("generation %s failed", turn.generation_id)
            error = InternalError("internal error")
            await self.bus.publish(
                self._event(turn, index + 1, "chat.error", detail=error.detail, code=error.code)
            )

    @staticmethod
    def _event(turn: PreparedTurn, index: int, kind: str, **payload: object) -> Event:
        return {
            "type": kind,
            "generation_id": turn.generation_id,
            "thread_id": turn.thread_id,
            "user_id": turn.user_id,
            "index": index,
            **payload,
        }

    def _completed(self, turn: PreparedTurn, index: int, done: TurnDone) -> Event:
        r = done.result
        return self._event(
            turn,
            index,
            "chat.completed",
            text=r.response,
            turn_id=r.turn_id,
            usage=r.usage.model_dump(),
            latency=r.processing_time,
            confidence=r.confidence,
            speech_turn=r.speech_turn.model_dump(),
            finish_reason=r.finish_reason,
            model=r.model,
            memory_ids=r.memory_ids,
            citations=r.citations,
            result=r.model_dump(),
        )

    async def watch(
        self, user_id: int, generation_id: str, after: int = -1
    ) -> AsyncIterator[Event]:
        """Events of one generation with index > after: the log first, then live, to the end.

        Subscribes before reading the log, so nothing published in between is missed.
        """
        async with self.bus.subscribe(user_id) as live:
            logged = await self.bus.replay(generation_id)
            if not logged or logged[0]["user_id"] != user_id:
                raise NotFound("no such generation (unknown, another user's, or expired)")
            seen = after
            for event in logged:
                if event["index"] <= after:
                    continue
                seen = event["index"]
                yield event
                if event["type"] in TERMINAL:
                    return
            if logged[-1]["type"] in TERMINAL:
                return
            async for event in live:
                if event.get("generation_id") != generation_id or event.get("index", -1) <= seen:
                    continue
                seen = event["index"]
                yield event
                if event["type"] in TERMINAL:
                    return
