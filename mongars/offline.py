"""Offline by default: every library's telemetry off, and an optional egress guard.

:func:`quiet_libraries` sets the switches that the libraries we ship read when
they load, so that none of them phones home, checks for updates or reaches a
model hub. It is the one place for them, called before those libraries are
imported: by the ``mongars`` entry point, by :func:`mongars.app.create_app`
and by the test suite. The switches are forced, not defaulted: no environment
a user happens to have turns telemetry back on.

The Microsoft query found by the egress test came from ONNX Runtime: from
1.29 its Linux wheels carry 1DS telemetry that sends a ``ProcessInfo`` event
to ``mobile.events.data.microsoft.com`` when its environment is created (at
import) and later session events. ``ORT_DISABLE_TELEMETRY=1``, read once at
that moment, turns all of it off (no uploader, no device id file).

:func:`guard` (``MONGARS_OFFLINE=true``) is for operators and tests who want
certainty: while it is active, Python-level outbound sockets and name lookups
to anything but loopback, Unix sockets and the hosts the settings name raise
:class:`~mongars.errors.EgressBlocked` (503), naming the caller. It works
through ``sys.addaudithook``, so it sees every library that uses Python's
``socket`` module (anyio, for one, hands a refused connect on inside an
exception group); native code
that opens its own sockets (C libraries) is outside its view, which is why
the egress test also traces system calls (tests/privacy).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mongars.errors import EgressBlocked

if TYPE_CHECKING:
    from mongars.settings import Settings

log = logging.getLogger(__name__)

# name -> (value, which library reads it and why)
SWITCHES: dict[str, tuple[str, str]] = {
    "ORT_DISABLE_TELEMETRY": ("1", "onnxruntime >= 1.29: 1DS telemetry (Microsoft collector)"),
    "HF_HUB_OFFLINE": ("1", "huggingface_hub / transformers: never reach the Hub"),
    "TRANSFORMERS_OFFLINE": ("1", "transformers: local files only"),
    "HF_DATASETS_OFFLINE": ("1", "datasets (training): local files only"),
    "HF_HUB_DISABLE_TELEMETRY": ("1", "huggingface_hub: usage telemetry"),
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": ("1", "huggingface_hub: never send a stored token"),
    "DO_NOT_TRACK": ("1", "the console-do-not-track convention (hub, many CLIs)"),
    "MLFLOW_DISABLE_TELEMETRY": ("true", "MLflow >= 3: usage telemetry"),
    "RAY_USAGE_STATS_ENABLED": ("0", "Ray: usage stats reporting"),
    "RAY_USAGE_STATS_PROMPT_ENABLED": ("0", "Ray: the usage stats prompt"),
}


def quiet_libraries() -> None:
    """Switch every shipped library's telemetry, update checks and hub access off.

    Idempotent and cheap. Libraries read these when they load; where one was
    imported already, its loaded setting is switched too when it has one.
    """
    for name, (value, _why) in SWITCHES.items():
        os.environ[name] = value
    hub: Any = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported before us: its constants were read at import
        hub.HF_HUB_OFFLINE = True
        hub.HF_HUB_DISABLE_TELEMETRY = True
    ort: Any = sys.modules.get("onnxruntime")
    if ort is not None and hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()  # later events; the start event was decided at import


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
    }
)
_STDLIB = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
_RESOLVE_TTL_S = 60.0


class _Guard:
    """Process-wide state behind the audit hook (audit hooks cannot be removed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed = False
        self.active: list[frozenset[str]] = []  # one allow-list per active guard
        self.allowed: frozenset[str] = frozenset()  # their union
        self.resolved: dict[str, tuple[float, frozenset[str]]] = {}
        self.local = threading.local()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event not in _EVENTS:
            return  # called for every audit event in the process: stay cheap
        if getattr(self.local, "busy", False):
            return  # our own look-up of an allowed name
        host, port = _destination(event, args)
        if host is None or self.permits(host):
            return
        where = _caller()
        log.warning("offline guard: refused %s to %s:%s from %s", event, host, port, where)
        raise EgressBlocked(
            f"MONGARS_OFFLINE: outbound {event.removeprefix('socket.')} to "
            f"{host}{f':{port}' if port is not None else ''} refused (from {where}). "
            "Allowed: loopback, Unix sockets and the hosts the settings name "
            f"({', '.join(sorted(self.allowed)) or 'none'}); "
            "add one to MONGARS_OFFLINE_ALLOW_HOSTS to allow it."
        )

    def permits(self, host: str) -> bool:
        name = host.strip("[]").lower().rstrip(".")
        if not name or name in LOOPBACK_NAMES or name in self.allowed:
            return True
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return False  # a name nobody allowed
        if ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback):
            return True
        return any(name in self._addresses(allowed) for allowed in self.allowed)

    def _addresses(self, name: str) -> frozenset[str]:
        """The addresses an allowed name resolves to (cached), to match connects by IP."""
        import socket

        now = time.monotonic()
        cached = self.resolved.get(name)
        if cached and now - cached[0] < _RESOLVE_TTL_S:
            return cached[1]
        self.local.busy = True
        try:
            found = frozenset(str(info[4][0]) for info in socket.getaddrinfo(name, None))
        except OSError:
            found = frozenset()
        finally:
            self.local.busy = False
        self.resolved[name] = (now, found)
        return found


_GUARD = _Guard()


def _destination(event: str, args: tuple[Any, ...]) -> tuple[str | None, Any]:
    """(host, port) an event reaches, or (None, None) when it is local by nature."""
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and isinstance(address[0], str | bytes):
            host = address[0].decode() if isinstance(address[0], bytes) else address[0]
            return host, address[1] if len(address) > 1 else None
        return None, None  # Unix socket path, netlink, or no address (connected socket)
    target = args[0] if args else None
    if isinstance(target, bytes):
        target = target.decode(errors="replace")
    if not isinstance(target, str):
        return None, None  # getaddrinfo(None, ...): a passive (bind) look-up
    return target, args[1] if event == "socket.getaddrinfo" and len(args) > 1 else None


def _caller() -> str:
    """The innermost frame outside the standard library (and this module)."""
    frame = sys._getframe(2)
    fallback = ""
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_STDLIB) and path != __file__:
            here = f"{path}:{frame.f_lineno} in {frame.f_code.co_name}"
            if f"{os.sep}mongars{os.sep}" in path:
                return here
            fallback = fallback or here
        frame = frame.f_back  # type: ignore[assignment]
    return fallback or "the standard library"


def allowed_hosts(settings: Settings) -> set[str]:
    """The hosts the settings name, which the guard lets through: the LLM server,
    Redis, PostgreSQL, Vault, the SearxNG instance, hosts research may fetch from
    although private, and ``MONGARS_OFFLINE_ALLOW_HOSTS``."""
    urls = [*settings.llm.endpoints, settings.redis_url, settings.database_url]
    if settings.secrets.backend == "vault":
        urls.append(settings.secrets.vault_addr)
    hosts = {h.lower() for h in settings.offline_allow_hosts}
    if settings.research.web:
        urls.append(settings.research.searxng_url)
        hosts.update(h.lower() for h in settings.research.allow_private_hosts)
    for url in urls:
        if url:
            host = urlsplit(url if "://" in url else f"//{url}").hostname
            if host:
                hosts.add(host.lower())
    return hosts


@contextmanager
def guard(allowed_hosts: Iterable[str] = ()) -> Iterator[None]:
    """Refuse outbound sockets beyond loopback, Unix sockets and ``allowed_hosts``
    while the block runs. Guards may overlap (several apps in one process): a
    destination is allowed when any active guard allows it."""
    allowed = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
    with _GUARD.lock:
        if not _GUARD.installed:
            sys.addaudithook(_GUARD.hook)
            _GUARD.installed = True
        _GUARD.active.append(allowed)
        _GUARD.allowed = frozenset().union(*_GUARD.active)
    try:
        yield
    finally:
        with _GUARD.lock:
            _GUARD.active.remove(allowed)
            _GUARD.allowed = frozenset().union(*_GUARD.active)
