"""Reading one KV v2 entry from Vault or OpenBao through hvac (token or AppRole auth).

hvac is synchronous (requests): callers in async code run :meth:`VaultReader.read` in a
thread. Every failure becomes a :class:`SecretsUnavailable` whose message names the
server, the entry or the key, and never a secret value.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests
from hvac import exceptions as vault_errors

from mongars.errors import SecretsUnavailable
from mongars.settings import SecretsSettings

log = logging.getLogger("mongars.secrets")


@dataclass(frozen=True, slots=True)
class Entry:
    """The KV entry's key/value pairs and its version (KV v2 metadata)."""

    values: dict[str, str]
    version: int


class VaultReader:
    """One Vault client for the process; logs in again when its token is refused."""

    def __init__(self, config: SecretsSettings) -> None:
        self.config = config
        self.addr = config.vault_addr.rstrip("/")
        self.where = f"{config.vault_mount}/{config.vault_path}"
        self._client: hvac.Client | None = None
        self._lock = threading.Lock()  # the refresh loop and a start-up read never overlap

    def read(self, required: tuple[str, ...] = ()) -> Entry:
        """The entry's string values; :class:`SecretsUnavailable` when Vault cannot be
        reached, refuses us, has no entry there or lacks a ``required`` key."""
        with self._lock:
            try:
                entry = self._read_relogging()
            except SecretsUnavailable:
                raise
            except Exception as exc:
                raise self._explain(exc) from None
        missing = [key for key in required if key not in entry.values]
        if missing:
            names = ", ".join(repr(k) for k in missing)
            raise SecretsUnavailable(
                f"Vault key{'s' if len(missing) > 1 else ''} {names} missing at {self.where} "
                f"(version {entry.version} on {self.addr})"
            )
        return entry

    def close(self) -> None:
        """Close the client's HTTP session (a later read opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None

    # --- internals --------------------------------------------------------------

    def _read_relogging(self) -> Entry:
        try:
            return self._read_once(fresh_login=False)
        except vault_errors.Forbidden:
            cfg = self.config
            if cfg.vault_auth == "token" and cfg.vault_token_file is None:
                raise
            # An AppRole token may have expired, a token file may have been rewritten.
            return self._read_once(fresh_login=True)

    def _read_once(self, *, fresh_login: bool) -> Entry:
        client = self._login() if fresh_login or self._client is None else self._client
        answer: dict[str, Any] = client.secrets.kv.v2.read_secret_version(
            path=self.config.vault_path,
            mount_point=self.config.vault_mount,
            raise_on_deleted_version=True,
        )
        data = answer.get("data") or {}
        raw = data.get("data") or {}
        version = int((data.get("metadata") or {}).get("version") or 0)
        values = {str(k): str(v) for k, v in raw.items() if v is not None}
        return Entry(values, version)

    def _login(self) -> hvac.Client:
        cfg = self.config
        verify: bool | str = str(cfg.vault_cacert) if cfg.vault_cacert else True
        # An explicit token (even "" before an AppRole login): hvac would otherwise read
        # VAULT_TOKEN or ~/.vault-token, a silent fallback.
        client = hvac.Client(url=self.addr, token="", verify=verify, timeout=cfg.timeout_s)
        if cfg.vault_auth == "token":
            client.token = _value(cfg.vault_token.get_secret_value(), cfg.vault_token_file)
        else:
            role_id = _value(cfg.vault_role_id, cfg.vault_role_id_file)
            secret_id = _value(cfg.vault_secret_id.get_secret_value(), cfg.vault_secret_id_file)
            try:
                client.auth.approle.login(
                    role_id=role_id, secret_id=secret_id, mount_point=cfg.vault_approle_mount
                )
            except (vault_errors.InvalidRequest, vault_errors.Forbidden) as exc:
                raise SecretsUnavailable(
                    f"Vault at {self.addr} refused the AppRole login "
                    f"(mount {cfg.vault_approle_mount!r}): {_first_error(exc)}"
                ) from None
            log.info("logged in to Vault at %s with AppRole", self.addr)
        if self._client is not None:
            self._client.adapter.close()
        self._client = client
        return client

    def _denied(self) -> SecretsUnavailable:
        return SecretsUnavailable(
            f"Vault at {self.addr} denied reading {self.where} with {self.config.vault_auth} "
            "auth: permission denied (a wrong or expired token, or no policy granting read "
            f"on {self.config.vault_mount}/data/{self.config.vault_path})"
        )

    def _explain(self, exc: Exception) -> SecretsUnavailable:
        if isinstance(exc, requests.exceptions.RequestException):
            return SecretsUnavailable(f"Vault at {self.addr} unreachable: {_reason(exc)}")
        if isinstance(exc, vault_errors.InvalidPath):
            return SecretsUnavailable(
                f"Vault at {self.addr} has no KV v2 entry at {self.where} "
                f"(mount {self.config.vault_mount!r}, path {self.config.vault_path!r})"
            )
        if isinstance(exc, vault_errors.Forbidden | vault_errors.Unauthorized):
            return self._denied()
        if isinstance(exc, vault_errors.VaultError):
            return SecretsUnavailable(
                f"Vault at {self.addr} could not read {self.where}: {_first_error(exc)}"
            )
        if isinstance(exc, OSError):  # a token or secret-id file that cannot be read
            return SecretsUnavailable(f"Vault credentials unreadable: {exc}")
        return SecretsUnavailable(f"Vault at {self.addr}: {type(exc).__name__}: {exc}")


def _value(inline: str, path: Path | None) -> str:
    """A credential given inline or in a mounted file (read each login)."""
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return inline


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return str(errors[0])
    return str(exc).split(", on ")[0] or type(exc).__name__


def _reason(exc: requests.exceptions.RequestException) -> str:
    """The cause of a connection failure without urllib3's object reprs."""
    cause: object = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)
    text = str(cause)
    if "): " in text:  # "HTTPConnection(host=..., port=...): Failed to establish ..."
        text = text.split("): ", 1)[1]
    return text or type(exc).__name__
