"""Secrets stay secret: after a full session against a real `mongars serve` logging at
DEBUG, no log line (stdout, stderr, log files in the data directory), no response body
the session read and no /metrics line holds a password, a token, an API key, a
WebSocket ticket, the JWT secret, the provider's API key, an invite secret, a node
private key or a stored password hash, in any of the forms they are written in (raw,
URL-encoded, hex, base64).

The one expected appearance: the setup token, printed once in the start-up log (how
the operator gets it; it dies with its first use).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mongars.peers.identity import KEYS_DIR
from mongars.settings import SECRET_FILE
from tests.conftest import free_port
from tests.llm.fake_servers import FakeOpenAI, openai_answer, serve
from tests.privacy.secrets_session import Recorder, run_session

LLM_API_KEY = "sk-provider-key-for-the-leak-test-0123456789"
BIN = Path(sys.executable).parent


@dataclass
class Server:
    url: str
    data_dir: Path
    out: Path
    err: Path
    proc: subprocess.Popen[bytes]

    def setup_token(self) -> str:
        m = re.search(
            r"setup token:\s*\n\s*\n\s+(\S+)", self.out.read_text() + self.err.read_text()
        )
        assert m, "no setup token in the start-up log"
        return m.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env(data_dir: Path, llm_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env.update(
        MONGARS_DATA_DIR=str(data_dir),  # no MONGARS_SECRET_KEY: the generated file
        MONGARS_LOG_LEVEL="debug",
        MONGARS_OFFLINE="true",
        MONGARS_LLM__PROVIDER="openai",
        MONGARS_LLM__BASE_URL=llm_url,
        MONGARS_LLM__MODEL="m1",
        MONGARS_LLM__API_KEY=LLM_API_KEY,
        MONGARS_MEMORY__ENABLED="false",  # no embedding model to load
        MONGARS_RESEARCH__DOCUMENTS="false",
        MONGARS_SCHEDULER__ENABLED="false",
        MONGARS_EVOLUTION__ENABLED="false",
        MONGARS_PEERS__ENABLED="true",
        MONGARS_PEERS__ALLOW_HTTP="true",
    )
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    chunks: list[dict[str, Any] | str] = [*openai_answer([("Hello", [-0.1]), (" there.", [-0.2])])]
    fake = FakeOpenAI(chunks=chunks)
    with serve(fake):
        port = free_port()
        data_dir = tmp_path / "data"
        out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [str(BIN / "mongars"), "serve", "--port", str(port)],
                env=_env(data_dir, fake.url),
                stdout=stdout,
                stderr=stderr,
            )
        running = Server(f"http://127.0.0.1:{port}", data_dir, out, err, proc)
        try:
            _wait_ready(running)
            yield running
        finally:
            running.stop()


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"mongars serve exited: {server.err.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"mongars serve not ready in 120 s: {server.err.read_text()[-3000:]}")


def _key_forms(pem: bytes) -> dict[str, str]:
    """A private key as PEM, its base64 body, and its raw bytes in hex and base64."""
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    body = "".join(pem.decode().strip().splitlines()[1:-1])
    return {
        "PEM": pem.decode().strip(),
        "PEM body": body,
        "raw hex": raw.hex(),
        "raw HEX": raw.hex().upper(),
        "raw base64": base64.b64encode(raw).decode().rstrip("="),
        "raw base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def _node_keys(data_dir: Path) -> dict[str, str]:
    forms = {}
    for pem in sorted((data_dir / KEYS_DIR).glob("*.pem")):
        for form, value in _key_forms(pem.read_bytes()).items():
            forms[f"node key {pem.name} ({form})"] = value
    return forms


def _password_hashes(data_dir: Path) -> dict[str, str]:
    """The stored argon2 hashes (aiosqlite logs SQL parameters at DEBUG)."""
    with closing(sqlite3.connect(data_dir / "mongars.db")) as db:
        rows = db.execute("SELECT username, password_hash FROM users").fetchall()
    assert len(rows) == 2
    return {f"password hash of {name}": digest for name, digest in rows}


def _variants(secrets: dict[str, str]) -> dict[str, str]:
    """Each secret as written, and URL-encoded (query strings, form bodies)."""
    out = dict(secrets)
    for name, value in secrets.items():
        for encoded in {quote(value, safe=""), quote_plus(value)} - {value}:
            out[f"{name} (URL-encoded)"] = encoded
    return out


def _log_files(data_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(data_dir)): p.read_text(errors="replace")
        for p in data_dir.rglob("*.log")
        if p.is_file()
    }


def test_no_secret_in_logs_error_bodies_or_metrics(server: Server) -> None:
    rec = Recorder(server.url)
    setup_token = server.setup_token()
    signing_before = (server.data_dir / KEYS_DIR / "signing.pem").read_bytes()
    run_session(rec, setup_token)
    metrics = rec.call("GET", "/metrics", 200).text
    assert "http_server_requests" in metrics
    rec.http.close()
    server.stop()

    secrets = dict(rec.secrets)
    secrets["JWT secret"] = (server.data_dir / SECRET_FILE).read_text().strip()
    secrets["provider API key"] = LLM_API_KEY
    secrets |= _node_keys(server.data_dir)
    secrets |= _password_hashes(server.data_dir)
    for form, value in _key_forms(signing_before).items():
        secrets[f"rotated-away signing key ({form})"] = value
    logs = {"stdout": server.out.read_text(), "stderr": server.err.read_text()}
    logs |= _log_files(server.data_dir)
    assert "DEBUG:" in logs["stderr"], "the server did not log at DEBUG"
    # the lines are still written, with the values out
    assert '"WebSocket /ws/chat?t=<redacted>" [accepted]' in logs["stderr"]
    assert '"GET /healthz?access_token=<redacted> HTTP/1.1" 200' in logs["stdout"]
    assert "< cookie: <redacted>" in logs["stderr"]
    # the start-up banner is how the operator receives the setup token: once, nowhere else
    banner = sum(text.count(setup_token) for text in logs.values())
    assert banner == 1, f"the setup token appears {banner} times in the logs"
    logs = {name: text.replace(setup_token, "<setup token>") for name, text in logs.items()}

    places = [(f"log {name}", text) for name, text in logs.items()]
    places += [(f"response {label}", body) for label, body in rec.bodies]
    places.append(("/metrics", metrics))
    leaks = [
        f"{secret!r} in {place}: ...{text[max(0, i - 80) : i + 40]!r}..."
        for secret, value in _variants(secrets).items()
        for place, text in places
        if (i := text.find(value)) >= 0
    ]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
