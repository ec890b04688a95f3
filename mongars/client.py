"""A small HTTP client for a running server: used by `mongars chat` and benchmarks."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse


class ClientError(Exception):
    pass


@dataclass
class StreamEvent:
    kind: str  # "delta" | "done" | "error"
    data: dict[str, Any]


class MonGARSClient:
    def __init__(self, base_url: str, timeout: float = 300.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def login(self, username: str, password: str) -> None:
        r = self.http.post("/token", data={"username": username, "password": password})
        if r.status_code != 200:
            raise ClientError(_detail(r))
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def stream_chat(self, message: str, session_id: str | None = None) -> Iterator[StreamEvent]:
        body: dict[str, Any] = {"message": message}
        if session_id:
            body["session_id"] = session_id
        with connect_sse(self.http, "POST", "/api/v1/conversation/chat/stream", json=body) as src:
            if src.response.status_code != 200:
                src.response.read()
                raise ClientError(_detail(src.response))
            for sse in src.iter_sse():
                yield StreamEvent(sse.event, json.loads(sse.data))


def _detail(response: httpx.Response) -> str:
    try:
        return f"HTTP {response.status_code}: {response.json().get('detail')}"
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"


def run_chat(url: str, username: str | None, session_id: str | None) -> int:
    """Interactive loop; returns the exit code."""
    client = MonGARSClient(url)
    try:
        username = username or os.environ.get("MONGARS_USERNAME") or input("Username: ")
        password = os.environ.get("MONGARS_PASSWORD") or getpass.getpass("Password: ")
        client.login(username, password)
        print("Type a message; an empty line or Ctrl-D quits.", file=sys.stderr)
        while True:
            try:
                message = input("you> ")
            except EOFError:
                break
            if not message.strip():
                break
            sys.stdout.write("monGARS> ")
            for event in client.stream_chat(message, session_id):
                if event.kind == "delta":
                    sys.stdout.write(event.data["text"])
                    sys.stdout.flush()
                elif event.kind == "done":
                    session_id = event.data["session_id"]
                elif event.kind == "error":
                    sys.stdout.write(f"\n[error] {event.data.get('detail')}")
            sys.stdout.write("\n")
        if session_id:
            print(f"(thread: {session_id})", file=sys.stderr)
        return 0
    except (ClientError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
