"""Re-reading Vault on a timer and applying what changed to the running app.

What a change does (docs/secrets.md, "Rotation"):

- ``secret_key``: used at once to sign and verify. Tokens, console CSRF tokens and
  WebSocket tickets signed with the old secret are refused: rotation logs everyone
  out (the usual reason to rotate is a leaked secret, which a grace period would keep
  valid). Dataset pseudonyms (training) keep the start-time secret until a restart.
- ``llm_api_key``: the provider's next request sends the new key.
- ``database_password``: new database connections use it (a SQLAlchemy ``do_connect``
  hook); pooled connections stay open, as PostgreSQL keeps them after a password change.

A failed refresh keeps the values in use, logs a warning and counts in
``secrets_refresh_failures_total``; the next tick tries again. Values are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from mongars.errors import SecretsUnavailable
from mongars.llm.base import LLMProvider
from mongars.llm.resilience import ResilientClient
from mongars.secrets.resolve import (
    DATABASE_PASSWORD,
    KEYS,
    LLM_API_KEY,
    SECRET_KEY,
    Resolved,
    read_secrets,
    url_with_password,
)

if TYPE_CHECKING:
    from mongars.runtime import Runtime

log = logging.getLogger("mongars.secrets")


class SecretsRefresher:
    """Owns the secrets read from Vault for one runtime."""

    def __init__(self, runtime: Runtime, resolved: Resolved) -> None:
        self.runtime = runtime
        self.reader = resolved.reader
        self.values = dict(resolved.values)
        self.version = resolved.version
        self.interval = runtime.settings.secrets.refresh_s
        meter = runtime.metrics.provider.get_meter("mongars.secrets")
        self.rotations = meter.create_counter(
            "secrets.rotations", unit="1", description="Secrets changed in Vault and applied"
        )
        self.failures = meter.create_counter(
            "secrets.refresh_failures",
            unit="1",
            description="Vault refreshes that failed (the values in use were kept)",
        )
        self.failures.add(0)  # the series exists from the start
        self._task: asyncio.Task[None] | None = None

    def attach(self, engine: AsyncEngine) -> None:
        """New connections of ``engine`` use the current database password."""
        if DATABASE_PASSWORD in self.values and engine.dialect.name != "sqlite":
            event.listen(engine.sync_engine, "do_connect", self._do_connect)

    def _do_connect(
        self, _dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]
    ) -> None:
        cparams["password"] = self.values[DATABASE_PASSWORD]

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="secrets.refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.reader.close)  # waits for a read in flight

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # never let the timer die; the next tick tries again
                log.exception("secrets refresh failed")

    async def refresh(self) -> list[str]:
        """Read Vault now and apply the changes; the keys that changed."""
        try:
            values, version = await asyncio.to_thread(
                read_secrets, self.runtime.settings, self.reader
            )
        except SecretsUnavailable as exc:
            self.failures.add(1)
            log.warning("secrets refresh failed, keeping the values in use: %s", exc.detail)
            return []
        for key in KEYS:
            if key in self.values and key not in values:
                log.warning(
                    "Vault key %r removed at %s: keeping the value in use", key, self.reader.where
                )
        changed = [k for k in KEYS if k in values and values[k] != self.values.get(k)]
        for key in changed:
            self._apply(key, values[key])
            self.rotations.add(1, {"key": key})
            log.warning(
                "secret %r rotated (Vault %s version %d -> %d)",
                key,
                self.reader.where,
                self.version,
                version,
            )
        self.version = version
        return changed

    def _apply(self, key: str, value: str) -> None:
        settings = self.runtime.settings
        self.values[key] = value
        if key == SECRET_KEY:
            self.runtime.secret = value
            settings.secret_key = SecretStr(value)
        elif key == LLM_API_KEY:
            settings.llm.api_key = SecretStr(value)
            use_api_key(self.runtime.llm, value)
        elif key == DATABASE_PASSWORD and settings.database_url:
            settings.database_url = url_with_password(settings.database_url, value)


def use_api_key(llm: LLMProvider, key: str) -> None:
    """Send ``key`` on the HTTP provider's next requests (no-op for local providers)."""
    http = getattr(llm, "http", None)
    if not isinstance(http, ResilientClient):
        return
    for endpoint in http.endpoints:
        if key:
            endpoint.client.headers["Authorization"] = f"Bearer {key}"
        else:
            endpoint.client.headers.pop("Authorization", None)
