"""Zero egress by default, proven on a real server: every socket call of `mongars serve`
and its children is traced (strace) through a scripted session, and every DNS
question is recorded, inside a network namespace where only loopback exists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]


def traced_session(tmp_path: Path, mode: str) -> dict[str, Any]:
    for tool in ("strace", "unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make system-deps installs it)")
    report = tmp_path / f"{mode}.json"
    command = ["unshare", "--net", "--mount", sys.executable, "-m", "tests.privacy.egress_session"]
    run = subprocess.run(
        [*command, str(report), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return dict(json.loads(report.read_text()))


def outbound(report: dict[str, Any]) -> list[str]:
    """The server's connections beyond loopback, and every DNS query it made (even to
    the loopback resolver). The resolver's own log also holds the browser's queries,
    which are not the server's: only the traced calls count."""
    return [
        f"{c['call']} to {c['host']}:{c['port']}"
        + (f" (DNS query for {c['dns_name']})" if c["dns_name"] else "")
        for c in report["calls"]
        if not c["loopback"] or c["port"] == 53
    ]


@pytest.mark.timeout(1200)  # a fresh data dir (ONNX export), the browser, a LoRA run, all jobs
def test_default_server_makes_no_outbound_connection_or_dns_query(tmp_path: Path) -> None:
    report = traced_session(tmp_path, "default")
    session = report["session"]
    # the session really used what it claims to cover
    assert session["memory_ids"] and session["memory_hits"] >= 1
    assert session["citations"] >= 1
    assert session["websocket"] == "chat.completed"
    learning = report["learning"]
    assert learning["dataset"] == "approved" and learning["training"] == "completed"
    assert learning["evaluated"] and learning["tracked"] and learning["adapter_answer"]
    assert {"memory.index", "memory.consolidate", "cache.warm", "training.curate"} <= set(
        learning["jobs"]
    )
    assert set(learning["jobs"].values()) <= {"succeeded", "yielded"}, learning["jobs"]
    print("learning session seconds:", learning["seconds"])
    leaks = outbound(report)
    print(f"outbound attempts: {len(leaks)}", *leaks, sep="\n  ")
    assert leaks == []


def test_web_research_connects_only_to_the_configured_hosts(tmp_path: Path) -> None:
    report = traced_session(tmp_path, "research")
    assert report["session"]["gap"] == "researched", report["session"]
    assert "/article.html" in report["site_paths"]
    assert outbound(report) == []
    tcp = {(c["host"], c["port"]) for c in report["calls"] if c["call"] == "connect"}
    allowed = {(host, port) for port in report["allowed_ports"] for host in ("127.0.0.1",)}
    assert tcp and tcp <= allowed, tcp - allowed
