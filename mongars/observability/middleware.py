"""ASGI middleware counting requests and latency by route template."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            runtime: Any = getattr(scope.get("app"), "state", None)
            metrics = getattr(getattr(runtime, "runtime", None), "metrics", None)
            if metrics is not None:
                route = scope.get("route")
                attrs = {
                    "http.method": scope["method"],
                    "http.route": getattr(route, "path", "unmatched"),
                    "http.status_code": status["code"],
                }
                metrics.http_requests.add(1, attrs)
                metrics.http_duration.record(time.perf_counter() - start, attrs)
