"""WebSocket chat (/ws/chat) and the ticket that opens it."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel

from mongars.auth.repository import UserRepository
from mongars.conversation.repository import ConversationRepository
from mongars.conversation.schemas import SESSION_ID_PATTERN
from mongars.db.engine import unit_of_work
from mongars.deps import CurrentUser, RuntimeDep
from mongars.errors import NotAuthenticated
from mongars.realtime.connection import ChatConnection
from mongars.realtime.origins import origin_allowed
from mongars.realtime.repository import TicketRepository
from mongars.realtime.tickets import issue_ticket, verify_ticket
from mongars.runtime import Runtime

router = APIRouter(tags=["realtime"])
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
SNAPSHOT_TURNS = 20


class TicketResponse(BaseModel):
    ticket: str
    ttl: int


@router.post("/api/v1/auth/ws/ticket", response_model=TicketResponse)
async def ws_ticket(user: CurrentUser, runtime: RuntimeDep) -> TicketResponse:
    """A single-use ticket for ``/ws/chat?t=<ticket>``, valid ``ttl`` seconds."""
    ttl = runtime.settings.realtime.ticket_ttl_s
    return TicketResponse(ticket=issue_ticket(runtime.secret, user.id, ttl), ttl=ttl)


@router.websocket("/ws/chat")
async def ws_chat(
    ws: WebSocket,
    t: Annotated[str, Query(max_length=300)] = "",
    thread_id: Annotated[str | None, Query(max_length=128)] = None,
) -> None:
    runtime: Runtime = ws.app.state.runtime
    await ws.accept()
    scheme = "https" if ws.url.scheme == "wss" else "http"
    own = f"{scheme}://{ws.headers.get('host', '')}"
    if not origin_allowed(ws.headers.get("origin"), own, runtime.settings.realtime.allowed_origins):
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="origin not allowed")
        return
    try:
        user = await _user_from_ticket(runtime, t)
    except NotAuthenticated as exc:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=exc.detail)
        return
    snapshot = await _snapshot(runtime, user.id, thread_id)
    # One chat budget per user, shared with REST, SSE and /v1 (mongars/rate_limits.py).
    await ChatConnection(ws, runtime, user, runtime.rate_limits.chat).run(snapshot)


async def _user_from_ticket(runtime: Runtime, raw: str) -> Any:
    if not raw:
        raise NotAuthenticated("missing ticket (?t=)")
    ticket = verify_ticket(runtime.secret, raw)
    async with unit_of_work(runtime.sessions) as session:
        if not await TicketRepository(session).use_once(ticket.nonce, ticket.expires_at):
            raise NotAuthenticated("ticket already used")
        user = await UserRepository(session).get(ticket.user_id)
        if user is None or not user.is_active:
            raise NotAuthenticated("unknown or disabled account")
        return user


async def _snapshot(runtime: Runtime, user_id: int, thread_id: str | None) -> dict[str, Any]:
    """The thread asked for (or the latest one) with its recent messages, oldest first."""
    if thread_id is not None and not re.fullmatch(SESSION_ID_PATTERN, thread_id):
        return {"thread_id": None, "messages": []}  # no thread has such an id (NUL...)
    async with unit_of_work(runtime.sessions) as session:
        repo = ConversationRepository(session)
        thread = await repo.thread(thread_id) if thread_id else await repo.latest_thread(user_id)
        if thread is None or thread.user_id != user_id:
            return {"thread_id": None, "messages": []}
        turns = await repo.recent_turns(thread.id, SNAPSHOT_TURNS)
        messages = [
            {
                "turn_id": t.id,
                "query": t.query,
                "response": t.response,
                "status": t.status,
                "created_at": t.created_at.isoformat(),
                "citations": list(t.citations or []),
            }
            for t in reversed(turns)
        ]
        return {"thread_id": thread.id, "messages": messages}
