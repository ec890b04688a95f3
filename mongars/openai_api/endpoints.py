"""OpenAI-compatible routes under ``/v1``, authenticated by API key.

Errors here use OpenAI's shape ``{"error": {message, type, param, code}}``
instead of monGARS' ``{detail, code}``: :class:`OpenAIRoute` translates the
domain errors, validation errors and HTTP errors raised by these routes only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from mongars.apikeys.deps import ApiKeyPrincipal
from mongars.deps import RuntimeDep
from mongars.errors import DomainError
from mongars.openai_api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    Model,
    ModelList,
)
from mongars.openai_api.service import OpenAIService
from mongars.rate_limits import ApiKeyChatLimit


def render_error(
    status: int, message: str, code: str, headers: dict[str, str] | None
) -> JSONResponse:
    """The app's error handlers, for a /v1 path (one no route matched, too)."""
    return openai_error(status, message, code, headers=headers)


def openai_error(
    status: int,
    message: str,
    code: str | None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse.of(status, message, code, param)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class OpenAIRoute(APIRoute):
    """An APIRoute whose errors come out in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                return openai_error(exc.status, exc.detail, exc.code, headers=exc.headers)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except HTTPException as exc:
                headers = getattr(exc, "headers", None)
                return openai_error(exc.status_code, str(exc.detail), None, headers=headers)

        return route


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
        f"{e.get('msg', 'invalid')}"
        for e in errors
    )
    return openai_error(400, message or "invalid request", "invalid_request", param=param)


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 413, 502, 503, 504)
}


@router.get("/models", response_model=ModelList, responses=ERRORS)
async def list_models(_: ApiKeyPrincipal, runtime: RuntimeDep) -> ModelList:
    """The model this server answers with."""
    return OpenAIService(runtime).models()


@router.get("/models/{model_id:path}", response_model=Model, responses=ERRORS)
async def get_model(model_id: str, _: ApiKeyPrincipal, runtime: RuntimeDep) -> Model:
    return OpenAIService(runtime).model(model_id)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    dependencies=[ApiKeyChatLimit],
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "a chat.completion, or with stream=true, chat.completion.chunk "
            "events then `data: [DONE]`",
        },
    },
)
async def chat_completions(
    body: ChatCompletionRequest, who: ApiKeyPrincipal, runtime: RuntimeDep
) -> ChatCompletion | StreamingResponse:
    """One monGARS turn for the key's user; ``model`` may name anything."""
    service = OpenAIService(runtime)
    if not body.stream:
        return await service.complete(who, body)
    chunks = await service.stream(who, body)
    return StreamingResponse(
        _sse(chunks),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(chunks: AsyncIterator[ChatCompletionChunk | ErrorResponse]) -> AsyncIterator[str]:
    try:
        async for item in chunks:
            yield f"data: {item.model_dump_json()}\n\n"
            if isinstance(item, ErrorResponse):
                return
        yield "data: [DONE]\n\n"
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
