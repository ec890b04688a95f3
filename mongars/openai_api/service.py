"""OpenAI chat completions run through the monGARS pipeline (Cortex) for a key's user.

The client's messages become a monGARS turn: system messages join the system
prompt, earlier user/assistant pairs become the history, and the last user
message is the turn's message. Turns are stored in a thread per key (and per
``user`` field), so they appear in the user's monGARS history.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from mongars.apikeys.service import KeyPrincipal
from mongars.conversation.context import PastTurn
from mongars.conversation.schemas import ChatResponse
from mongars.conversation.service import ChatService, PreparedTurn, TurnDelta, TurnDone
from mongars.errors import DomainError, ProviderError
from mongars.openai_api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    CompletionUsage,
    ErrorResponse,
    Message,
    Model,
    ModelList,
)
from mongars.runtime import Runtime

SYSTEM_ROLES = {"system", "developer"}
CHAT_ROLES = {"user", "assistant"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


class InvalidRequest(DomainError):
    """A request the OpenAI API refuses with 400 (monGARS' own routes use 422)."""

    status, code = 400, "invalid_request"


@dataclass(frozen=True, slots=True)
class Conversation:
    system: str
    history: list[PastTurn] | None  # None: use the thread's stored history
    message: str


class OpenAIService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.chat = ChatService(runtime)

    def models(self) -> ModelList:
        return ModelList(data=[Model(id=self.runtime.llm.model_id, created=int(time.time()))])

    def model(self, model_id: str) -> Model:
        if model_id != self.runtime.llm.model_id:
            raise InvalidRequest(f"The model {model_id!r} does not exist")
        return Model(id=model_id, created=int(time.time()))

    async def complete(self, who: KeyPrincipal, body: ChatCompletionRequest) -> ChatCompletion:
        turn = await self._prepare(who, body)
        events = self.chat.run(turn)
        try:
            async for event in events:
                if isinstance(event, TurnDone):
                    return _completion(event.result)
        finally:
            await _close(events)
        raise ProviderError("the turn ended without an answer")

    async def stream(
        self, who: KeyPrincipal, body: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk | ErrorResponse]:
        """Start generating; returns once the model has answered its first piece.

        Errors before that raise (so the client gets a real status code);
        errors after it end the stream with one :class:`ErrorResponse`.
        """
        turn = await self._prepare(who, body)
        events = self.chat.run(turn)
        try:
            first = await anext(events)
        except BaseException:
            await _close(events)
            raise
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return self._chunks(first, events, include_usage)

    async def _chunks(
        self,
        first: TurnDelta | TurnDone,
        events: AsyncIterator[TurnDelta | TurnDone],
        include_usage: bool,
    ) -> AsyncIterator[ChatCompletionChunk | ErrorResponse]:
        model = self.runtime.llm.model_id
        chunk = _Chunker(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model)
        try:
            yield chunk({"role": "assistant", "content": ""})
            event = first
            while isinstance(event, TurnDelta):
                yield chunk({"content": event.text})
                event = await anext(events)
        except StopAsyncIteration:
            yield ErrorResponse.of(502, "the turn ended without an answer", "provider_error")
            return
        except DomainError as exc:
            yield ErrorResponse.of(exc.status, exc.detail, exc.code)
            return
        finally:
            await _close(events)
        yield chunk({}, finish_reason=event.result.finish_reason)
        if include_usage:
            yield chunk(None, usage=_usage(event.result))

    async def _prepare(self, who: KeyPrincipal, body: ChatCompletionRequest) -> PreparedTurn:
        convo = to_conversation(body.messages, use_history=who.key.use_history)
        skip = {
            name
            for name, used in (("memory", who.key.use_memory), ("persona", who.key.use_persona))
            if not used
        }
        return await self.chat.prepare(
            who.user,
            convo.message,
            thread_id(who.key.id, body.user),
            history=convo.history,
            system_extra=convo.system,
            skip=frozenset(skip),
        )


def to_conversation(messages: Sequence[Message], *, use_history: bool) -> Conversation:
    """Split OpenAI messages into system text, past user/assistant pairs and the message."""
    system: list[str] = []
    chat: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        text = _text(m, i)
        if m.role in SYSTEM_ROLES:
            if text.strip():
                system.append(text.strip())
        elif m.role in CHAT_ROLES:
            chat.append((m.role, text))
        else:
            raise InvalidRequest(
                f"messages[{i}].role {m.role!r} is not supported "
                "(use system, developer, user or assistant)"
            )
    if not chat or chat[-1][0] != "user":
        raise InvalidRequest("the last message (besides system messages) must have role 'user'")
    message = chat[-1][1]
    if not message.strip():
        raise InvalidRequest("the last user message must not be empty")
    earlier = chat[:-1]
    # A lone user message continues the key's stored thread, if the key allows.
    history = None if not earlier and use_history else _pairs(earlier)
    return Conversation("\n\n".join(system), history, message)


def _pairs(messages: Sequence[tuple[str, str]]) -> list[PastTurn]:
    """Each user message with the assistant message right after it; the rest is dropped."""
    pairs: list[PastTurn] = []
    pending: str | None = None
    for role, text in messages:
        if role == "user":
            pending = text
        elif pending is not None:
            pairs.append(PastTurn(pending, text))
            pending = None
    return pairs


def _text(message: Message, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"messages[{index}] has a {part.type!r} part; only text content is supported"
            )
        parts.append(part.text)
    return "\n".join(parts)


def thread_id(key_id: int, user: str | None) -> str:
    """``apikey-<id>``, or ``apikey-<id>-<user>`` with the user made safe for a session id."""
    base = f"apikey-{key_id}"
    if not user:
        return base
    safe = _UNSAFE.sub("_", user)
    if safe != user or len(safe) > 64:  # keep distinct users distinct after cleaning
        safe = f"{safe[:40]}-{hashlib.sha256(user.encode()).hexdigest()[:12]}"
    return f"{base}-{safe}"


class _Chunker:
    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.id, self.created, self.model = completion_id, created, model

    def __call__(
        self,
        delta: dict[str, str] | None,
        *,
        finish_reason: str | None = None,
        usage: CompletionUsage | None = None,
    ) -> ChatCompletionChunk:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish_reason)]
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )


async def _close(events: AsyncIterator[object]) -> None:
    """Close the pipeline's generator: stops generation, stores a partial answer."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _usage(result: ChatResponse) -> CompletionUsage:
    prompt, completion = result.usage.prompt_tokens, result.usage.completion_tokens
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _completion(result: ChatResponse) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{result.turn_id}",
        created=int(time.time()),
        model=result.model,
        choices=[
            Choice(
                message=AssistantMessage(content=result.response),
                finish_reason=result.finish_reason,
            )
        ],
        usage=_usage(result),
    )
