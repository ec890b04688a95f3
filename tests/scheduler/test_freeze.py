"""A training worker is stopped while this process generates an answer and continues
after; a worker started meanwhile waits too; the server's shutdown continues it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mongars.training.supervisor import RunSupervisor, _Watch
from tests.conftest import Api, make_settings


def state(pid: int) -> str:
    """The kernel's letter for the process: T when stopped, S or R otherwise."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def until_state(pid: int, want: str) -> None:
    deadline = time.time() + 5
    while state(pid) != want:
        assert time.time() < deadline, state(pid)
        time.sleep(0.01)


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"],
        start_new_session=True,  # as the supervisor starts workers: their own group
    )
    yield proc
    proc.kill()
    proc.wait()


def supervisor(tmp_path: Path, **training: object) -> RunSupervisor:
    settings = make_settings(tmp_path, training=training)
    return RunSupervisor(None, settings)  # type: ignore[arg-type]


def test_freeze_stops_and_continues_the_worker(
    tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    sup = supervisor(tmp_path)
    sup._watches["r1"] = _Watch(worker.pid, None)
    sup.freeze(True)
    until_state(worker.pid, "T")
    sup.freeze(True)  # a second answer at once: still stopped, nothing else sent
    assert state(worker.pid) == "T"
    sup.freeze(False)
    until_state(worker.pid, "S")


def test_freeze_can_be_turned_off(tmp_path: Path, worker: subprocess.Popen[bytes]) -> None:
    sup = supervisor(tmp_path, freeze_while_generating=False)
    sup._watches["r1"] = _Watch(worker.pid, None)
    sup.freeze(True)
    time.sleep(0.2)
    assert state(worker.pid) != "T"


def test_generation_hooks_fire_once_per_busy_period(api_factory: Callable[..., Api]) -> None:
    api = api_factory()
    seen: list[bool] = []
    api.runtime.busy_hooks.append(seen.append)
    admin = api.setup_admin()
    for _ in range(2):
        r = api.client.post("/api/v1/conversation/chat", json={"message": "hello"}, headers=admin)
        assert r.status_code == 200, r.text
    assert seen == [True, False, True, False]
    assert api.runtime.generating == 0


def test_a_stopped_worker_still_gets_its_pause_at_shutdown(
    tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    import asyncio

    sup = supervisor(tmp_path)
    sup._watches["r1"] = _Watch(worker.pid, None)
    sup.freeze(True)
    until_state(worker.pid, "T")
    asyncio.run(sup.close(grace_s=0.5))
    worker.wait(timeout=5)  # SIGTERM, then SIGCONT: it ran its handler (the default: exit)
    assert worker.returncode == -signal.SIGTERM
