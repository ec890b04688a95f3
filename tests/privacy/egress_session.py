"""A traced user session against a real `mongars serve`, run inside a network namespace.

``python -m tests.privacy.egress_session REPORT.json default|research`` must run as
root under ``unshare --net --mount`` (test_egress.py does that): only loopback
exists, so nothing the server tries can leave the machine, and /etc/resolv.conf
is bind-mounted to a DNS sink on 127.0.0.1:53 that records every name asked for
(and answers REFUSED at once). The server runs under strace, which records every
connect/send of it and its children; then a scripted session: setup and login in
Chromium, chats over HTTP with memory, a WebSocket chat, a chat in the console, a
document upload, a memory search and an export; then the learning loop
(learning_session.py: consent, feedback, curation, a real LoRA run with its
evaluation and MLflow tracking, the adapter approved and activated) and every
scheduler job run by hand; then a clean shutdown. Peers and Ray keep their
defaults (off).

``research`` mode turns web research on against a fake SearxNG and a page
server on loopback, and asks a question nothing covers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.privacy.learning_session import TINY_TRAINING, learning_session
from tests.privacy.strace_log import STRACE_ARGS, dns_question, parse

PASSWORD = "egress-test-password"
# Variables that make libraries switch telemetry off by themselves (ONNX Runtime skips
# it under CI, for example): the server must be quiet without them.
AMBIENT = re.compile(
    r"^(CI|CIRCLECI|GITHUB_ACTIONS|GITLAB_CI|TF_BUILD|BUILD_BUILDID|ORT_.*|HF_.*|"
    r"TRANSFORMERS_.*|DO_NOT_TRACK|MLFLOW_.*|RAY_.*|MONGARS_.*)$"
)


class DnsSink:
    """A resolver on 127.0.0.1:53 (UDP) that records questions and refuses them."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                packet, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            name = dns_question(packet)
            self.names.append(name or "?")
            if len(packet) >= 12:  # same id and question, QR=1, RCODE=5 (refused)
                reply = packet[:2] + bytes([0x81, 0x85]) + packet[4:6] + b"\0\0\0\0\0\0"
                self.sock.sendto(reply + packet[12:], peer)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not AMBIENT.match(k)}
    env |= {
        "MONGARS_DATA_DIR": str(data_dir),
        "MONGARS_PORT": str(port),
        "MONGARS_LLM__MAX_TOKENS": "24",  # short answers: the session is about sockets
        "MONGARS_LLM__TEMPERATURE": "0",
        **extra,
    }
    return env


class TracedServer:
    def __init__(self, data_dir: Path, trace: Path, extra: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        mongars = Path(sys.executable).with_name("mongars")
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*STRACE_ARGS, "-o", str(trace), str(mongars), "serve"],
            env=server_env(data_dir, self.port, extra),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 600  # a fresh data dir: model and ONNX export first
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not become ready")

    def setup_token(self) -> str | None:
        m = re.search(r"setup token:\s*\n\s*\n\s+(\S+)", self.log_path.read_text())
        return m.group(1) if m else None

    def stop(self) -> None:
        """SIGTERM to the server (strace's child): its shutdown is traced too."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        for pid in children.split():
            os.kill(int(pid), signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


def browser_session(base: str, token: str | None) -> None:
    """First-admin setup (when given the token) or login, then one chat, in Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, ui_login, wait_live

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(120_000)
        if token:
            page.goto(f"{base}/setup")
            page.get_by_label("Setup token").fill(token)
            page.get_by_label("Admin username").fill("admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create admin and log in").click()
            page.wait_for_url(f"{base}/chat")
        else:
            ui_login(page, base, "admin", PASSWORD)
        wait_live(page)
        page.get_by_label("Message").fill("Say hello to my cat Miso.")
        page.keyboard.press("Enter")
        page.wait_for_selector("article.assistant:not(.streaming) .body:not(:empty)")
        page.goto(f"{base}/memory")
        browser.close()


def api_session(base: str) -> dict[str, Any]:
    """Chats with memory, a WebSocket chat, a document, a memory search, an export."""
    from tests.realtime.wsclient import WS

    facts: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=300) as http:
        r = http.post("/token", data={"username": "admin", "password": PASSWORD})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for message in ("My sister Ada lives in Lyon.", "Where does my sister live?"):
            r = http.post("/api/v1/conversation/chat", json={"message": message}, headers=auth)
            r.raise_for_status()
        facts["memory_ids"] = r.json()["memory_ids"]
        doc = b"# Heron backups\n\nThe backup code name is BLUE-HERON-42.\n"
        r = http.post("/api/v1/documents", files={"file": ("heron.md", doc)}, headers=auth)
        r.raise_for_status()
        r = http.post(
            "/api/v1/conversation/chat",
            json={"message": "What is the backup code name?"},
            headers=auth,
        )
        r.raise_for_status()
        facts["citations"] = len(r.json()["citations"])
        r = http.get("/api/v1/memory/search", params={"q": "sister"}, headers=auth)
        r.raise_for_status()
        facts["memory_hits"] = len(r.json()["items"])
        r = http.get("/api/v1/memory/export", headers=auth)
        r.raise_for_status()
        ticket = http.post("/api/v1/auth/ws/ticket", headers=auth).json()["ticket"]
    ws = WS(f"{base.replace('http', 'ws', 1)}/ws/chat?t={ticket}")
    ws.send_json({"type": "chat.send", "message": "Thanks, bye!"})
    for _ in range(2000):
        kind = ws.receive_json()["type"]
        if kind in ("chat.completed", "chat.error"):
            facts["websocket"] = kind
            break
    ws.close()
    return facts


def research_session(base: str, site_url: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=300) as http:
        r = http.post("/token", data={"username": "admin", "password": PASSWORD})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        question = "Who is the Greek messenger goddess personifying the rainbow?"
        r = http.post("/api/v1/conversation/chat", json={"message": question}, headers=auth)
        r.raise_for_status()
        gaps = http.get("/api/v1/research/gaps", headers=auth).json()["items"]
        return {
            "citations": [c["url"] for c in r.json()["citations"]],
            "gap": gaps[0]["status"] if gaps else None,
        }


def main(report_path: str, mode: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="mongars-egress-"))
    resolv = work / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
    sink = DnsSink()
    trace = work / "strace.log"
    data_dir = work / "data"
    report: dict[str, Any] = {"mode": mode}
    try:
        if mode == "default":
            server = TracedServer(data_dir, trace, TINY_TRAINING)
            try:
                browser_session(server.url, server.setup_token())
                report["session"] = api_session(server.url)
                report["learning"] = learning_session(server.url, PASSWORD)
            finally:
                server.stop()
        else:
            from tests.research.webserver import serve_site

            with serve_site() as site:
                site.searx_body = json.dumps(
                    {"results": [{"url": f"{site.url}/article.html", "title": "Iris"}]}
                )
                research = {
                    "MONGARS_RESEARCH__WEB": "true",
                    "MONGARS_RESEARCH__SEARXNG_URL": site.url,
                    "MONGARS_RESEARCH__ALLOW_PRIVATE_HOSTS": '["127.0.0.1"]',
                    "MONGARS_RESEARCH__FETCH_HOST_INTERVAL_S": "0",
                    "MONGARS_MEMORY__ENABLED": "false",
                }
                server = TracedServer(data_dir, trace, research)
                try:
                    browser_session(server.url, server.setup_token())
                    report["session"] = research_session(server.url, site.url)
                    report["allowed_ports"] = [site.port]
                finally:
                    server.stop()
                report["site_paths"] = site.paths()
    finally:
        sink.stop()
    report["calls"] = [c.to_json() for c in parse(trace.read_text())]
    report["dns_names"] = sink.names
    Path(report_path).write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)  # ~200 MB (model, index); kept when it failed


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
