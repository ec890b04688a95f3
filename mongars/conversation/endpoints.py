"""Chat (plain and SSE streaming) and history routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mongars.conversation.schemas import ChatRequest, ChatResponse, HistoryItem
from mongars.conversation.service import ChatService, TurnDelta, TurnDone
from mongars.deps import CurrentUser, RuntimeDep
from mongars.errors import DomainError, Forbidden, ProviderError, error_body

router = APIRouter(prefix="/api/v1/conversation", tags=["conversation"])


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, user: CurrentUser, runtime: RuntimeDep) -> ChatResponse:
    service = ChatService(runtime)
    turn = await service.prepare(user, body.message, body.session_id)
    async for event in service.run(turn):
        if isinstance(event, TurnDone):
            return event.result
    raise ProviderError("the turn ended without an answer")


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE: delta*, done"}},
)
async def chat_stream(
    body: ChatRequest, user: CurrentUser, runtime: RuntimeDep
) -> StreamingResponse:
    """Server-Sent Events: ``delta`` events ``{text}``, then one ``done`` event with the
    same fields as the non-streaming response (or one ``error`` event ``{detail, code}``)."""
    service = ChatService(runtime)
    turn = await service.prepare(user, body.message, body.session_id)
    events = service.run(turn)
    # Wait for the first event before answering, so a provider that is down
    # still gets a proper 502/503/504 status rather than a 200 with an error.
    first = await anext(events)
    return StreamingResponse(
        _sse(first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    first: TurnDelta | TurnDone, events: AsyncIterator[TurnDelta | TurnDone]
) -> AsyncIterator[str]:
    try:
        yield _frame(first)
        async for event in events:
            yield _frame(event)
    except DomainError as exc:
        yield f"event: error\ndata: {json.dumps(error_body(exc.detail, exc.code))}\n\n"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _frame(event: TurnDelta | TurnDone) -> str:
    if isinstance(event, TurnDelta):
        return f"event: delta\ndata: {json.dumps({'text': event.text}, ensure_ascii=False)}\n\n"
    return f"event: done\ndata: {event.result.model_dump_json()}\n\n"


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
