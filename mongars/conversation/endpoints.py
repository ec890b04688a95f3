"""Chat (plain and SSE streaming, resumable) and history routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from mongars.conversation.schemas import ChatRequest, ChatResponse, HistoryItem
from mongars.conversation.service import ChatService
from mongars.deps import CurrentUser, RuntimeDep
from mongars.errors import (
    Forbidden,
    GenerationCancelled,
    InvalidInput,
    NotFound,
    ProviderError,
    error_for_code,
)
from mongars.rate_limits import ChatLimit
from mongars.realtime.bus import Event

router = APIRouter(prefix="/api/v1/conversation", tags=["conversation"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/chat", response_model=ChatResponse, dependencies=[ChatLimit])
async def chat(body: ChatRequest, user: CurrentUser, runtime: RuntimeDep) -> ChatResponse:
    """Answer one message. The answer is stored even if the client leaves before it ends."""
    started = await runtime.hub.start(user, body.message, body.session_id, image=body.image_bytes())
    async for event in runtime.hub.watch(user.id, started.generation_id):
        if event["type"] == "chat.completed":
            return ChatResponse.model_validate(event["result"])
        _raise_if_failed(event)
    raise ProviderError("the generation ended without an answer")


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    dependencies=[ChatLimit],
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE: delta*, done"}},
)
async def chat_stream(
    body: ChatRequest, user: CurrentUser, runtime: RuntimeDep
) -> StreamingResponse:
    """Server-Sent Events: ``delta`` events ``{text}``, then one ``done`` event with the
    same fields as the non-streaming response (or ``error`` / ``cancelled``). Each event
    has an id ``<generation_id>:<index>``; leaving does not stop the answer, and
    ``GET /generations/{id}/events`` with ``Last-Event-ID`` resumes it."""
    started = await runtime.hub.start(user, body.message, body.session_id, image=body.image_bytes())
    return await _stream(runtime.hub.watch(user.id, started.generation_id))


@router.get(
    "/generations/{generation_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def resume_stream(
    generation_id: str,
    user: CurrentUser,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=-1)] = None,
) -> StreamingResponse:
    """Replay a generation's events after ``Last-Event-ID`` (or ``?after=``), then follow it."""
    if after is None:
        after = -1
        if last_event_id:
            gen, _, index = last_event_id.rpartition(":")
            if gen != generation_id or not index.lstrip("-").isdigit():
                raise InvalidInput("Last-Event-ID must be '<generation_id>:<index>'")
            after = int(index)
    return await _stream(runtime.hub.watch(user.id, generation_id, after), first_status=False)


@router.post("/generations/{generation_id}/cancel")
async def cancel_generation(
    generation_id: str, user: CurrentUser, runtime: RuntimeDep
) -> dict[str, str]:
    """Stop a running answer; the part generated so far is stored as cancelled."""
    if not await runtime.hub.cancel(user, generation_id):
        raise NotFound("no running generation with that id (on this server process)")
    return {"status": "cancelled"}


async def _stream(events: AsyncIterator[Event], first_status: bool = True) -> StreamingResponse:
    # Wait for the first real event before answering, so that a provider that is
    # down gets a proper 502/503/504 status rather than a 200 with an error event.
    first: Event | None = None
    async for event in events:
        if event["type"] != "chat.started":
            first = event
            break
    if first is None:
        raise NotFound("no such generation")
    if first_status and first["type"] == "chat.error":
        await events.aclose()  # type: ignore[attr-defined]
        _raise_if_failed(first)
    return StreamingResponse(
        _sse(first, events), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _sse(first: Event, events: AsyncIterator[Event]) -> AsyncIterator[str]:
    try:
        yield _frame(first)
        async for event in events:
            if event["type"] != "chat.started":
                yield _frame(event)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _frame(event: Event) -> str:
    kind = event["type"]
    data: Any
    if kind == "chat.delta":
        name, data = "delta", {"text": event["text"]}
    elif kind == "chat.completed":
        name, data = "done", event["result"]
    elif kind == "chat.cancelled":
        name, data = "cancelled", {"text": event["text"]}
    else:
        name, data = "error", {"detail": event["detail"], "code": event["code"]}
    payload = json.dumps(data, ensure_ascii=False)
    return f"id: {event['generation_id']}:{event['index']}\nevent: {name}\ndata: {payload}\n\n"


def _raise_if_failed(event: Event) -> None:
    if event["type"] == "chat.error":
        raise error_for_code(event["code"], event["detail"])
    if event["type"] == "chat.cancelled":
        raise GenerationCancelled("the answer was cancelled before it finished")


@router.get("/history", response_model=list[HistoryItem])
async def history(
    user: CurrentUser,
    runtime: RuntimeDep,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    session_id: Annotated[str | None, Query(max_length=128)] = None,
) -> list[HistoryItem]:
    """The caller's turns, newest first. ``user_id`` may only name the caller."""
    if user_id is not None and user_id not in (user.username, str(user.id)):
        raise Forbidden("you can only read your own history")
    return await ChatService(runtime).history(user, limit, session_id)
