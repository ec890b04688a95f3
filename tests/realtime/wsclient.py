"""A small synchronous WebSocket client for tests (the `websockets` package)."""

from __future__ import annotations

import json
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


class WS:
    def __init__(self, url: str, origin: str | None = None) -> None:
        self.conn: ClientConnection = connect(
            url,
            origin=origin,
            proxy=None,
            compression=None,
            ping_interval=None,
            legacy=True,  # type: ignore[arg-type]
        )
        self.snapshot: dict[str, Any] = {}

    def send_json(self, data: Any) -> None:
        self.conn.send(json.dumps(data))

    def send_text(self, text: str) -> None:
        self.conn.send(text)

    def receive_json(self, timeout: float = 10) -> Any:
        try:
            return json.loads(self.conn.recv(timeout=timeout))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None

    def close(self) -> None:
        self.conn.close()
