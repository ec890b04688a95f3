"""Marks user activity for the idle gate: every HTTP request and WebSocket connection
except probes, metrics, static files and the jobs pages themselves."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mongars.scheduler.idle import counts_as_activity


class ActivityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheduler = _scheduler(scope) if scope["type"] in ("http", "websocket") else None
        if scheduler is None or not counts_as_activity(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        scheduler.activity.note()
        try:
            await self.app(scope, receive, send)
        finally:
            scheduler.activity.note()  # a long answer ends later than it began
            await scheduler.activity.share()


def _scheduler(scope: Scope) -> Any:
    state = getattr(scope.get("app"), "state", None)
    return getattr(getattr(state, "runtime", None), "scheduler", None)
