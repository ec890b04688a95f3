"""What the Serve application and the ``ray`` provider send each other (JSON).

``POST /v1/stream`` ``{messages, params}`` answers NDJSON lines: ``{"delta", "logprobs"}``
per piece, then ``{"finish": {prompt_tokens, completion_tokens, finish_reason}}``, or
``{"error": str}``. ``POST /v1/tokens`` ``{messages}`` answers ``{prompt_tokens,
message_tokens}`` counted by the replica's own tokenizer and chat template.
``GET /v1/info`` describes the replica (model, context window, prompt format)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem

ROLES = ("system", "user", "assistant")


class ProtocolError(ValueError):
    pass


def messages_json(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def messages_from(data: Any) -> list[ChatMessage]:
    if not isinstance(data, list) or not data:
        raise ProtocolError("messages: a non-empty list of {role, content}")
    out = []
    for m in data:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ProtocolError(f"messages: role must be one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise ProtocolError("messages: content must be a string")
        out.append(ChatMessage(m["role"], m["content"]))
    return out


def params_json(params: GenerationParams) -> dict[str, Any]:
    return asdict(params)


def params_from(data: Any) -> GenerationParams:
    if not isinstance(data, dict):
        raise ProtocolError("params: an object")
    adapter = data.get("adapter")
    if adapter is not None and (
        not isinstance(adapter, str)
        or len(adapter) != 64
        or any(c not in "0123456789abcdef" for c in adapter)
    ):
        raise ProtocolError("params: adapter must be a sha256 (64 hex digits) or null")
    try:
        return GenerationParams(**data)
    except TypeError as exc:
        raise ProtocolError(f"params: {exc}") from exc


def item_line(item: StreamItem) -> str:
    if isinstance(item, Finish):
        return json.dumps({"finish": asdict(item)}) + "\n"
    return json.dumps({"delta": item.text, "logprobs": item.logprobs}) + "\n"


def error_line(message: str) -> str:
    return json.dumps({"error": message}) + "\n"


def item_from(data: dict[str, Any]) -> StreamItem:
    """A line the provider read; an ``error`` line raises ProtocolError."""
    if "error" in data:
        raise ProtocolError(str(data["error"]))
    if "finish" in data:
        f = data["finish"]
        return Finish(int(f["prompt_tokens"]), int(f["completion_tokens"]), str(f["finish_reason"]))
    return Delta(str(data.get("delta", "")), [float(x) for x in data.get("logprobs") or []])
