"""monGARS SDK: typed sync and async clients with SSE and WebSocket streaming.

>>> from mongars_sdk import Client
>>> with Client("http://127.0.0.1:8000") as client:
...     client.login("alice", "...")
...     print(client.chat.send("Hello").response)
"""

from mongars_sdk import _generated as models
from mongars_sdk._async.client import AsyncChatSocket, AsyncClient
from mongars_sdk._sync.client import ChatSocket, Client
from mongars_sdk.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    MongarsError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
    UnsupportedMediaTypeError,
)
from mongars_sdk.streaming import (
    CancelledEvent,
    DeltaEvent,
    DoneEvent,
    SocketEvent,
    StreamEvent,
)

__all__ = [
    "AsyncChatSocket",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "CancelledEvent",
    "ChatSocket",
    "Client",
    "ConflictError",
    "DeltaEvent",
    "DoneEvent",
    "InvalidInputError",
    "MongarsError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SocketEvent",
    "StreamError",
    "StreamEvent",
    "UnsupportedMediaTypeError",
    "models",
]
