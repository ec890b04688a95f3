"""Outbound peer requests: signed, over HTTPS with the invite's certificate pinned,
or over plain HTTP only where the admin declared the link private."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from mongars.peers.identity import NodeIdentity
from mongars.peers.signing import sign_headers
from mongars.settings import PeersSettings


class PeerUnreachable(Exception):
    """The peer could not be reached, or answered with an error."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


def check_url(url: str, allow_http: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a peer URL is http(s)://host[:port]")
    if parts.scheme == "http" and not allow_http:
        raise ValueError(
            "plain HTTP between peers needs MONGARS_PEERS__ALLOW_HTTP=true "
            "(only over a private link: WireGuard, Tailscale, loopback)"
        )
    return url.strip().rstrip("/")


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def fingerprint_file(certfile: str) -> str:
    """The sha256 fingerprint of this node's own certificate (PEM file), for invites."""
    with open(certfile, encoding="ascii") as f:
        return fingerprint(ssl.PEM_cert_to_DER_cert(f.read()))


async def _pinned_context(host: str, port: int, pin: str, wait_s: float) -> ssl.SSLContext:
    """Fetch the peer's certificate, check it against the pin, and trust exactly it."""

    def fetch() -> str:
        return ssl.get_server_certificate((host, port), timeout=wait_s)

    pem = await asyncio.to_thread(fetch)
    der = ssl.PEM_cert_to_DER_cert(pem)
    if not hmac.compare_digest(fingerprint(der), pin.lower()):
        raise PeerUnreachable("the peer's TLS certificate does not match its pinned fingerprint")
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False  # the pin names the one certificate we accept
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # it is the anchor, CA or not
    return context


class PeerTransport:
    def __init__(self, identity: NodeIdentity, settings: PeersSettings) -> None:
        self.identity = identity
        self.settings = settings
        self._contexts: dict[tuple[str, int, str], ssl.SSLContext] = {}

    async def _verify(self, url: str, pin: str | None) -> ssl.SSLContext | bool:
        parts = urlsplit(url)
        if parts.scheme != "https":
            return True
        if not pin:
            return True  # a certificate from a CA this machine trusts
        key = (parts.hostname or "", parts.port or 443, pin)
        if key not in self._contexts:
            self._contexts[key] = await _pinned_context(
                key[0], key[1], pin, self.settings.timeout_s
            )
        return self._contexts[key]

    def _signed(
        self, base_url: str, destination: str, path: str, payload: dict[str, Any]
    ) -> tuple[str, bytes, dict[str, str]]:
        """The URL, JSON body and headers of a signed POST to a peer."""
        url = check_url(base_url, self.settings.allow_http) + path
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = sign_headers(
            self.identity,
            "POST",
            url,
            body,
            destination,
            lifetime=timedelta(seconds=self.settings.request_ttl_s),
        )
        headers["content-type"] = "application/json"
        return url, body, headers

    async def send(
        self,
        base_url: str,
        destination: str,
        path: str,
        payload: dict[str, Any],
        pin: str | None = None,
        wait_s: float | None = None,
    ) -> tuple[dict[str, Any], float]:
        """POST a signed JSON body; return the JSON answer and the latency in ms."""
        url, body, headers = self._signed(base_url, destination, path, payload)
        started = time.perf_counter()
        try:
            verify = await self._verify(base_url, pin)
            async with httpx.AsyncClient(
                verify=verify, timeout=wait_s or self.settings.timeout_s
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from exc
        latency = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise PeerUnreachable(
                f"HTTP {response.status_code}: {response.text[:200]}", response.status_code
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise PeerUnreachable("the peer answered with something other than JSON") from exc
        return (data if isinstance(data, dict) else {"data": data}), latency

    async def _stream(
        self,
        base_url: str,
        destination: str,
        path: str,
        payload: dict[str, Any],
        pin: str | None,
        lines: bool,
    ) -> AsyncIterator[Any]:
        """POST a signed JSON body and yield the answer as it comes: its non-empty lines
        (NDJSON) or its bytes."""
        url, body, headers = self._signed(base_url, destination, path, payload)
        try:
            verify = await self._verify(base_url, pin)
            async with (
                httpx.AsyncClient(verify=verify, timeout=self.settings.timeout_s) as client,
                client.stream("POST", url, content=body, headers=headers) as response,
            ):
                if response.status_code >= 400:
                    text = (await response.aread()).decode(errors="replace")
                    raise PeerUnreachable(
                        f"HTTP {response.status_code}: {text[:200]}", response.status_code
                    )
                if lines:
                    async for line in response.aiter_lines():
                        if line:
                            yield line
                else:
                    async for chunk in response.aiter_bytes():
                        yield chunk
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise PeerUnreachable(f"{type(exc).__name__}: {exc}") from exc

    def stream_bytes(
        self,
        base_url: str,
        destination: str,
        path: str,
        payload: dict[str, Any],
        pin: str | None = None,
    ) -> AsyncIterator[bytes]:
        """POST a signed JSON body and yield the answer's bytes as they come."""
        return self._stream(base_url, destination, path, payload, pin, lines=False)

    def stream_lines(
        self,
        base_url: str,
        destination: str,
        path: str,
        payload: dict[str, Any],
        pin: str | None = None,
    ) -> AsyncIterator[str]:
        """POST a signed JSON body and yield the answer's lines as they come (NDJSON)."""
        return self._stream(base_url, destination, path, payload, pin, lines=True)
