# Generated from _async/client.py by sdk/python/scripts/generate.py (unasync):
# do not edit, run `make sdk-generate`.
"""The blocking client. Generated, do not edit: the source is ``_async/client.py``.

Every route group is a namespace of the client (``client.chat``, ``client.threads``...).
Responses are the pydantic models generated from the OpenAPI schema; request bodies
with several optional fields take the generated model or its fields as keywords,
and only what the caller set is sent.
"""

from __future__ import annotations

import builtins
import contextlib
import uuid
from collections.abc import Generator
from types import TracebackType
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel
from websockets.sync.client import ClientConnection, connect

from mongars_sdk import _generated as m
from mongars_sdk._sync.groups import (
    Adapters,
    Admin,
    Documents,
    Feedback,
    History,
    Jobs,
    Keys,
    Memory,
    OpenAI,
    Profile,
    Threads,
    Training,
    _Group,
)
from mongars_sdk._common import DEFAULT_BASE_URL, STREAM_PATH, params, seg, websocket_url
from mongars_sdk.errors import error_for_code, error_from_response
from mongars_sdk.streaming import SocketEvent, StreamEvent, parse_socket, parse_sse

M = TypeVar("M", bound=BaseModel)


class Client:
    """A monGARS client. Authenticate with ``token=`` (from ``login``), or ``api_key=``
    for the OpenAI-compatible routes (``client.openai``)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or api_key
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self.chat = Chat(self)
        self.history = History(self)
        self.threads = Threads(self)
        self.memory = Memory(self)
        self.documents = Documents(self)
        self.profile = Profile(self)
        self.feedback = Feedback(self)
        self.training = Training(self)
        self.adapters = Adapters(self)
        self.jobs = Jobs(self)
        self.admin = Admin(self)
        self.keys = Keys(self)
        self.openai = OpenAI(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = self._http.request(
            method,
            path,
            json=json,
            params=query,
            data=data,
            files=files,
            headers=self._headers(headers),
        )
        if response.is_error:
            raise error_from_response(response)
        return response

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = self._request(method, path, **kwargs)
        return model.model_validate_json(response.content)

    def _list(self, model: type[M], method: str, path: str, **kwargs: Any) -> builtins.list[M]:
        response = self._request(method, path, **kwargs)
        return [model.model_validate(item) for item in response.json()]

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    def _sse(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Generator[StreamEvent, None]:
        with connect_sse(
            self._http, method, path, headers=self._headers(headers), **kwargs
        ) as source:
            if source.response.is_error:
                source.response.read()
                raise error_from_response(source.response)
            for sse in source.iter_sse():
                yield parse_sse(sse.event, sse.data, sse.id)

    # -- authentication ---------------------------------------------------------------------

    def login(self, username: str, password: str) -> m.TokenResponse:
        """``POST /token``; the client uses the token from then on."""
        response = self._request(
            "POST", "/token", data={"username": username, "password": password}
        )
        token = m.TokenResponse.model_validate_json(response.content)
        self.token = token.access_token
        return token

    def logout(self) -> None:
        """Revoke the token in use."""
        self._request("POST", "/api/v1/auth/logout")
        self.token = None

    def me(self) -> m.UserOut:
        return self._call(m.UserOut, "GET", "/api/v1/user/me")

    def change_password(self, old_password: str, new_password: str) -> m.StatusResponse:
        body = {"old_password": old_password, "new_password": new_password}
        return self._call(m.StatusResponse, "POST", "/api/v1/user/change-password", json=body)

    def ws_ticket(self) -> m.TicketResponse:
        return self._call(m.TicketResponse, "POST", "/api/v1/auth/ws/ticket")

    def ready(self) -> bool:
        response = self._http.get("/ready")
        return response.status_code == 200


class Chat(_Group):
    """``/api/v1/conversation``: chat, SSE streams, cancel; ``websocket()`` for ``/ws/chat``."""

    def send(
        self, message: str, *, session_id: str | None = None, image: str | None = None
    ) -> m.ChatResponse:
        body = params(message=message, session_id=session_id, image=image)
        return self._c._call(m.ChatResponse, "POST", "/api/v1/conversation/chat", json=body)

    def stream(
        self, message: str, *, session_id: str | None = None, image: str | None = None
    ) -> Generator[StreamEvent, None]:
        """Server-Sent Events: ``DeltaEvent``s, then a ``DoneEvent`` (or ``CancelledEvent``).

        Leaving the loop early does not stop the answer (``cancel`` does); it can be
        picked up again with ``resume(generation_id, after=index)``.
        """
        body = params(message=message, session_id=session_id, image=image)
        for event in self._c._sse("POST", STREAM_PATH, json=body):
            yield event

    def resume(self, generation_id: str, *, after: int = -1) -> Generator[StreamEvent, None]:
        """The events of a generation after index ``after`` (-1: all), then the live rest."""
        path = f"/api/v1/conversation/generations/{seg(generation_id)}/events"
        headers = {"Last-Event-ID": f"{generation_id}:{after}"} if after >= 0 else None
        for event in self._c._sse("GET", path, headers=headers):
            yield event

    def cancel(self, generation_id: str) -> Any:
        path = f"/api/v1/conversation/generations/{seg(generation_id)}/cancel"
        return self._c._json("POST", path)

    def websocket(self, thread_id: str | None = None) -> ChatSocket:
        """A ``/ws/chat`` connection, opened and closed as a context manager."""
        return ChatSocket(self._c, thread_id)

    def speech(self, turn_id: int) -> bytes:
        """The answer of a turn as WAV audio."""
        path = f"/api/v1/conversation/turns/{turn_id}/speech"
        return (self._c._request("GET", path)).content


class ChatSocket:
    """A ``/ws/chat`` connection (docs/websocket.md). Answers the server's pings, and
    yields each ``(generation_id, index)`` once even when a resume replays it."""

    def __init__(self, client: Client, thread_id: str | None = None) -> None:
        self._c = client
        self._thread_id = thread_id
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._seen: dict[str, int] = {}
        self._finished: set[str] = set()
        self.connected: SocketEvent | None = None
        self.snapshot: SocketEvent | None = None

    def __enter__(self) -> ChatSocket:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        ticket = (self._c.ws_ticket()).ticket
        url = websocket_url(self._c.base_url, ticket, self._thread_id)
        self._ws = self._stack.enter_context(
            connect(url, compression=None, proxy=None, max_size=2**22)
        )
        self.connected = self.recv()
        self.snapshot = self.recv()

    def close(self) -> None:
        self._stack.close()

    @property
    def running(self) -> builtins.list[str]:
        """Generation ids still in progress when the socket opened."""
        snapshot = self.snapshot.running if self.snapshot else None
        return [r["generation_id"] for r in snapshot or []]

    def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise RuntimeError("the socket is not open")
        self._ws.send(SocketEvent.model_validate(message).model_dump_json(by_alias=True))

    def recv(self) -> SocketEvent:
        """The next event (pings are answered here and not returned)."""
        if self._ws is None:
            raise RuntimeError("the socket is not open")
        while True:
            event = parse_socket(self._ws.recv())
            if event.type != "ping":
                return event
            self._send({"type": "pong"})

    def send(
        self, message: str, *, thread_id: str | None = None, client_id: str | None = None
    ) -> str:
        """Send ``chat.send``; returns its ``client_id`` (the ``ref`` of its ack)."""
        client_id = client_id or uuid.uuid4().hex
        body = params(type="chat.send", message=message, thread_id=thread_id, client_id=client_id)
        self._send(body)
        return client_id

    def regenerate(self, thread_id: str, *, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        self._send({"type": "chat.regenerate", "thread_id": thread_id, "client_id": client_id})
        return client_id

    def cancel(self, generation_id: str) -> None:
        self._send({"type": "chat.cancel", "generation_id": generation_id})

    def chat(self, message: str, *, thread_id: str | None = None) -> Generator[SocketEvent, None]:
        """Send a message and yield its generation's events up to the last one
        (``chat.completed`` or ``chat.cancelled``; ``chat.error`` raises)."""
        client_id = self.send(message, thread_id=thread_id)
        for event in self._follow(None, client_id):
            yield event

    def resume(self, generation_id: str, last_index: int = -1) -> Generator[SocketEvent, None]:
        """Replay a generation's events after ``last_index``, then follow it to its end."""
        client_id = uuid.uuid4().hex
        self._seen[generation_id] = max(self._seen.get(generation_id, -1), last_index)
        self._send(
            {
                "type": "chat.resume",
                "generation_id": generation_id,
                "last_index": last_index,
                "client_id": client_id,
            }
        )
        for event in self._follow(generation_id, client_id):
            yield event

    def _follow(self, generation_id: str | None, client_id: str) -> Generator[SocketEvent, None]:
        while True:
            event = self.recv()
            if event.type == "ack" and event.ref == client_id:
                if not event.ok:
                    error = event.error or {}
                    raise error_for_code(str(error.get("code")), str(error.get("detail")))
                generation_id = event.generation_id or generation_id
                replayed = (event.model_extra or {}).get("replayed")
                over = generation_id in self._finished or generation_id not in self.running
                if replayed == 0 and over:
                    return  # a resume of a finished answer whose every event was applied
                continue
            if event.type == "chat.started" and event.client_id == client_id:
                generation_id = event.generation_id
            if generation_id is None or event.generation_id != generation_id:
                continue  # another generation of this user (another tab), or an ack
            index = event.index if event.index is not None else -1
            if index <= self._seen.get(generation_id, -1):
                continue  # replayed twice after a resume
            self._seen[generation_id] = index
            if event.type == "chat.error":
                raise error_for_code(str(event.code), str(event.detail))
            if event.terminal:
                self._finished.add(generation_id)
            yield event
            if event.terminal:
                return
