"""OpenAI wire format: the subset of chat completions and models that monGARS serves.

Request fields monGARS does not use (tools, logprobs, penalties...) are ignored,
as unknown fields are; see docs/openai.md for what is honoured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Error ``type`` values, as OpenAI sends them.
INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class Message(BaseModel):
    role: str = Field(max_length=32)
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=1, description="only 1 is supported")
    user: str | None = Field(default=None, max_length=256)


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: dict[str, str] = Field(description="{role} first, then {content}, then {}")
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mongars"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail

    @classmethod
    def of(
        cls, status: int, message: str, code: str | None, param: str | None = None
    ) -> ErrorResponse:
        """The OpenAI error body for an HTTP status and a monGARS error code."""
        code = OPENAI_CODES.get(code or "", code)
        if status == 401:
            code = "invalid_api_key"
        kind = SERVER_ERROR if status >= 500 else INVALID_REQUEST
        return cls(error=ErrorDetail(message=message, type=kind, param=param, code=code))


# monGARS error codes renamed to the ones OpenAI clients recognise.
OPENAI_CODES = {
    "context_too_large": "context_length_exceeded",
    "rate_limited": "rate_limit_exceeded",
}
