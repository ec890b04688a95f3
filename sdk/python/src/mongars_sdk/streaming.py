"""Typed streaming events (hand-written: the OpenAPI schema cannot describe streams).

SSE (``POST /api/v1/conversation/chat/stream`` and the resume route) yields
:data:`StreamEvent`; the WebSocket ``/ws/chat`` yields :class:`SocketEvent`.
The transports themselves live in the clients (``client.chat.stream``,
``client.chat.websocket``); this module only parses, so both clients share it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mongars_sdk._generated import ChatResponse
from mongars_sdk.errors import StreamError

TERMINAL_SOCKET_EVENTS = frozenset({"chat.completed", "chat.cancelled", "chat.error"})


class _Event(BaseModel):
    generation_id: str
    index: int


class DeltaEvent(_Event):
    """A piece of the answer; the deltas concatenate to the final response."""

    type: Literal["delta"] = "delta"
    text: str


class DoneEvent(_Event):
    """The answer is complete and stored: ``result`` is what ``/chat`` returns."""

    type: Literal["done"] = "done"
    result: ChatResponse

    @property
    def turn_id(self) -> int:
        return self.result.turn_id

    @property
    def response(self) -> str:
        return self.result.response


class CancelledEvent(_Event):
    """The answer was cancelled; ``text`` is the part generated (stored as cancelled)."""

    type: Literal["cancelled"] = "cancelled"
    text: str


StreamEvent = DeltaEvent | DoneEvent | CancelledEvent


def parse_sse(event: str, data: str, event_id: str) -> StreamEvent:
    """One SSE frame -> a typed event; an ``error`` frame raises :class:`StreamError`."""
    generation_id, _, index_text = event_id.rpartition(":")
    index = int(index_text) if index_text.isdigit() else -1
    payload: Any = json.loads(data)
    if event == "delta":
        return DeltaEvent(generation_id=generation_id, index=index, text=payload["text"])
    if event == "done":
        result = ChatResponse.model_validate(payload)
        return DoneEvent(generation_id=generation_id, index=index, result=result)
    if event == "cancelled":
        return CancelledEvent(generation_id=generation_id, index=index, text=payload["text"])
    if event == "error":
        raise StreamError(0, str(payload.get("code", "error")), str(payload.get("detail", "")))
    raise StreamError(0, "unknown_event", f"unexpected SSE event {event!r}")


class SocketEvent(BaseModel):
    """An event from ``/ws/chat`` (docs/websocket.md); fields absent for a type are None.

    ``for_`` is the JSON field ``for`` of an ``ack``. Fields the server adds later
    are kept (``model_extra``).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str
    generation_id: str | None = None
    thread_id: str | None = None
    index: int | None = None
    text: str | None = None
    turn_id: int | None = None
    client_id: str | None = None
    code: str | None = None
    detail: str | None = None
    ok: bool | None = None
    ref: str | None = None
    for_: str | None = Field(default=None, alias="for")
    error: dict[str, Any] | None = None
    running: list[dict[str, Any]] | None = None
    messages: list[dict[str, Any]] | None = None

    @property
    def terminal(self) -> bool:
        """The last event of a generation (completed, cancelled or failed)."""
        return self.type in TERMINAL_SOCKET_EVENTS


def parse_socket(frame: str | bytes) -> SocketEvent:
    return SocketEvent.model_validate_json(frame)
