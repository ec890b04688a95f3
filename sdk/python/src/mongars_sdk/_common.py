"""Pieces both clients share (no I/O)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
STREAM_PATH = "/api/v1/conversation/chat/stream"


def dump(model: BaseModel) -> dict[str, Any]:
    """A request model as JSON, only the fields the caller set (the server's defaults hold)."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


def params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones left as None."""
    return {k: v for k, v in values.items() if v is not None}


def seg(value: str | int) -> str:
    """A path segment, escaped (usernames and thread ids are caller-chosen)."""
    return quote(str(value), safe="")


def websocket_url(base_url: str, ticket: str, thread_id: str | None) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode(params(t=ticket, thread_id=thread_id))
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/chat", query, ""))
