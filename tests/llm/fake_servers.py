"""Small HTTP servers that speak the Ollama and OpenAI-compatible protocols.

Each runs a Starlette app under uvicorn in a background thread, bound to
127.0.0.1 on a port the OS picks. Tests script what the server answers and read
back the request bodies it received.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

LOOPBACK = "127.0.0.1"


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class FakeServer:
    """State shared by the protocol fakes: what to answer, and what was asked."""

    # Non-200 answer for the generation endpoint (body is sent as JSON).
    status: int = 200
    error_body: Any = None
    error_headers: dict[str, str] = field(default_factory=dict)
    # Error answers given first, one per generation request: (status, JSON body, headers).
    queued: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    # Seconds to wait before answering the generation endpoint (headers included).
    delay_s: float = 0.0
    # Seconds to wait between two streamed lines.
    line_delay_s: float = 0.0
    # Drop the connection (no end of the chunked body) after this many lines.
    drop_after: int | None = None
    requests: list[Recorded] = field(default_factory=list, init=False)
    url: str = field(default="", init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.path == path]

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.url.path, body))
        return body

    async def _wait(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server is stopping (clean shutdown)."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    async def _before_answer(self) -> Response | None:
        if self.delay_s:
            await self._wait(self.delay_s)
        if self.queued:
            status, body, headers = self.queued.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        if self.status != 200:
            return JSONResponse(
                self.error_body, status_code=self.status, headers=self.error_headers
            )
        return None

    async def _lines(self, lines: Sequence[str]) -> AsyncIterator[str]:
        for i, line in enumerate(lines):
            if i == self.drop_after:
                raise ConnectionAbortedError("the fake server drops the connection")
            if i and self.line_delay_s:
                await self._wait(self.line_delay_s)
            yield line

    def app(self) -> Starlette:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class FakeOllama(FakeServer):
    """``GET /api/tags`` and streaming NDJSON ``POST /api/chat``."""

    models: list[str] = field(default_factory=lambda: ["tiny"])
    # Each item is one line: a dict is sent as JSON, a str as is.
    chat_lines: list[dict[str, Any] | str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def tags(request: Request) -> Response:
            self.requests.append(Recorded(request.method, request.url.path, None))
            return JSONResponse({"models": [{"name": m, "model": m} for m in self.models]})

        async def chat(request: Request) -> Response:
            await self._record(request)
            error = await self._before_answer()
            if error is not None:
                return error
            lines = [
                (json.dumps(item) if isinstance(item, dict) else item) + "\n"
                for item in self.chat_lines
            ]
            return StreamingResponse(self._lines(lines), media_type="application/x-ndjson")

        return Starlette(
            routes=[
                Route("/api/tags", tags, methods=["GET"]),
                Route("/api/chat", chat, methods=["POST"]),
            ]
        )


@dataclass
class FakeOpenAI(FakeServer):
    """``GET /v1/models``, SSE ``POST /v1/chat/completions`` and ``POST /tokenize``."""

    models: list[str] = field(default_factory=lambda: ["m1"])
    # When set, ``GET /v1/models`` answers this text as is (200) instead of ``models``.
    models_raw: str | None = None
    # Each item is one SSE event: a dict is sent as ``data: {json}``, a str as is.
    chunks: list[dict[str, Any] | str] = field(default_factory=list)
    send_done: bool = True
    # None: /tokenize answers 404; otherwise one token per whitespace-separated word
    # of ``content`` times this factor.
    tokenize_factor: int | None = None

    def app(self) -> Starlette:
        async def models(request: Request) -> Response:
            self.requests.append(Recorded(request.method, request.url.path, None))
            if self.models_raw is not None:
                return Response(self.models_raw, media_type="application/json")
            return JSONResponse(
                {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
            )

        async def tokenize(request: Request) -> Response:
            body = await self._record(request)
            if self.tokenize_factor is None:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            words = str(body.get("content") or body.get("prompt") or "").split()
            return JSONResponse({"tokens": list(range(len(words) * self.tokenize_factor))})

        async def completions(request: Request) -> Response:
            await self._record(request)
            error = await self._before_answer()
            if error is not None:
                return error
            events = [
                "data: " + (json.dumps(c) if isinstance(c, dict) else c) + "\n\n"
                for c in self.chunks
            ]
            if self.send_done:
                events.append("data: [DONE]\n\n")
            return StreamingResponse(self._lines(events), media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/v1/models", models, methods=["GET"]),
                Route("/tokenize", tokenize, methods=["POST"]),
                Route("/v1/chat/completions", completions, methods=["POST"]),
            ]
        )


class Servable(Protocol):
    """What ``serve`` runs: an ASGI app, a stop flag its handlers watch, and its URL."""

    url: str
    _stopping: threading.Event

    def app(self) -> Any: ...


S = TypeVar("S", bound=Servable)


@contextmanager
def serve(fake: S) -> Iterator[S]:
    """Run ``fake`` on 127.0.0.1 in a background thread; stop it cleanly on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app(),
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake server did not start")
        time.sleep(0.005)
    fake.url = f"http://{LOOPBACK}:{port}"
    try:
        yield fake
    finally:
        fake._stopping.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the fake server did not stop"


@contextmanager
def refused_url() -> Iterator[str]:
    """A loopback URL nothing listens on: the port is held (bound, not listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    try:
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        sock.close()


# --- what the servers stream ------------------------------------------------------


def ollama_answer(
    pieces: Sequence[tuple[str, Sequence[float]]],
    prompt_eval_count: int = 12,
    eval_count: int | None = None,
    done_reason: str = "stop",
    done: bool = True,
) -> list[dict[str, Any]]:
    """NDJSON lines: one per piece (text, token logprobs), then the final ``done``."""
    lines: list[dict[str, Any]] = [
        {
            "model": "tiny",
            "message": {"role": "assistant", "content": text},
            "done": False,
            "logprobs": [{"token": text, "logprob": lp} for lp in lps],
        }
        for text, lps in pieces
    ]
    if done:
        lines.append(
            {
                "model": "tiny",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": done_reason,
                "prompt_eval_count": prompt_eval_count,
                "eval_count": len(pieces) if eval_count is None else eval_count,
            }
        )
    return lines


def openai_answer(
    pieces: Sequence[tuple[str, Sequence[float]]],
    prompt_tokens: int = 12,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any]]:
    """SSE chunks: a role chunk, one per piece, a finish chunk, then usage alone."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m1"}
    chunks: list[dict[str, Any]] = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
            "usage": None,
        }
    ]
    for text, lps in pieces:
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text},
                        "logprobs": {
                            "content": [
                                {"token": text, "logprob": lp, "top_logprobs": []} for lp in lps
                            ]
                        },
                        "finish_reason": None,
                    }
                ],
                "usage": None,
            }
        )
    chunks.append(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}],
            "usage": None,
        }
    )
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(pieces)
                if completion_tokens is None
                else completion_tokens,
                "total_tokens": 0,
            },
        }
    )
    return chunks
