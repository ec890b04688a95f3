"""MONGARS_OFFLINE: the runtime egress guard refuses outbound sockets, names the caller,
and lets loopback, Unix sockets and the hosts the settings name through.

The deliberate outbound calls run in a child process inside a network namespace
(only loopback exists there), so even a broken guard could not send anything.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mongars.app import create_app
from mongars.errors import EgressBlocked
from mongars.offline import SWITCHES, allowed_hosts, quiet_libraries
from tests.conftest import make_settings
from tests.fakes import ScriptedLLM

ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = textwrap.dedent(
    """
    import asyncio, json, socket, sys
    import httpx
    from mongars.errors import EgressBlocked
    from mongars.offline import guard

    def attempt(fn):
        try:
            fn()
            return "ok"
        except BaseException as exc:
            found = exc  # anyio's happy eyeballs raise connect errors in a group
            while isinstance(found, BaseExceptionGroup):
                found = found.exceptions[0]
            if isinstance(found, EgressBlocked):
                return "blocked: " + str(found)
            if isinstance(found, OSError):
                return f"oserror: {found.__class__.__name__}"
            raise

    def connect(host, port=9):
        def go():
            with socket.create_connection((host, port), timeout=1):
                pass
        return go

    async def through_httpx():
        async with httpx.AsyncClient() as client:
            await client.get("http://198.51.100.7/")

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    out = {"before": attempt(connect("198.51.100.7"))}
    with guard(["searx.internal"]):
        out["ip"] = attempt(connect("198.51.100.7"))
        out["name"] = attempt(lambda: socket.getaddrinfo("mobile.events.data.microsoft.com", 443))
        out["allowed_name"] = attempt(lambda: socket.getaddrinfo("searx.internal", 80))
        out["loopback"] = attempt(connect("127.0.0.1", port))
        out["localhost"] = attempt(connect("localhost", port))
        out["udp"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                             .sendto(b"x", ("203.0.113.9", 53)))
        out["unix"] = attempt(lambda: socket.socket(socket.AF_UNIX).connect("/nonexistent"))
        out["httpx"] = attempt(lambda: asyncio.run(through_httpx()))
    out["after"] = attempt(connect("198.51.100.7"))
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Any]:
    run = subprocess.run(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -c "$1"',
            sys.executable,
            SCENARIOS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def test_deliberate_outbound_calls_are_refused_naming_caller_and_destination(
    outcomes: dict[str, Any],
) -> None:
    blocked = "blocked: MONGARS_OFFLINE: outbound getaddrinfo to 198.51.100.7:9 refused"
    assert outcomes["ip"].startswith(blocked) and "(from <string>:" in outcomes["ip"]
    assert "MONGARS_OFFLINE_ALLOW_HOSTS" in outcomes["ip"]
    assert "mobile.events.data.microsoft.com" in outcomes["name"] and "blocked" in outcomes["name"]
    assert outcomes["udp"].startswith("blocked: ") and "203.0.113.9:53" in outcomes["udp"]
    # through a real client library the error surfaces as the guard's, with the caller
    assert outcomes["httpx"].startswith("blocked: ")
    assert re.search(r"\(from \S+:\d+ in \S+\)", outcomes["httpx"])


def test_loopback_unix_sockets_and_allowed_hosts_pass(outcomes: dict[str, Any]) -> None:
    assert outcomes["loopback"] == "ok" and outcomes["localhost"] == "ok"
    assert outcomes["unix"].startswith("oserror")  # refused by the OS, not by the guard
    assert not outcomes["allowed_name"].startswith("blocked")


def test_the_guard_only_acts_while_active(outcomes: dict[str, Any]) -> None:
    # outside it the OS answers (no route in the namespace), not the guard
    assert outcomes["before"].startswith("oserror") and outcomes["after"].startswith("oserror")


def test_allowed_hosts_are_the_ones_settings_name(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path,
        llm={"provider": "openai", "base_url": "http://gpu-box:8080/v1"},
        redis_url="redis://cache.lan:6379/0",
        offline_allow_hosts=["Vault.Example"],
        research={"web": False, "searxng_url": "http://searx.lan", "allow_private_hosts": ["w"]},
    )
    assert allowed_hosts(s) == {"gpu-box", "cache.lan", "vault.example"}
    s = make_settings(tmp_path, research={"web": True, "searxng_url": "http://searx.lan"})
    assert allowed_hosts(s) == {"searx.lan"}


def test_quiet_libraries_forces_every_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    quiet_libraries()
    assert {k: os.environ[k] for k in SWITCHES} == {k: v for k, (v, _) in SWITCHES.items()}


def test_the_server_runs_under_the_guard(tmp_path: Path) -> None:
    """A server with MONGARS_OFFLINE refuses, in its own process and while it runs, what
    it does not allow (the probe is a numeric address: no I/O even when let through)."""

    def probe() -> Any:
        return socket.getaddrinfo("198.51.100.7", 80, flags=socket.AI_NUMERICHOST)

    with TestClient(create_app(make_settings(tmp_path, offline=True), llm=ScriptedLLM())) as c:
        assert c.get("/ready").status_code == 200
        with pytest.raises(EgressBlocked, match=r"198\.51\.100\.7.*test_offline_guard.py"):
            probe()
    assert probe()  # the guard ended with the server
    with TestClient(create_app(make_settings(tmp_path, offline=False), llm=ScriptedLLM())):
        assert probe()
