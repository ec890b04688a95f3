"""The idle cycle for real: a job runs only once users are away, stops within one step
when one comes back, goes on from there at the next idle period, and admins see the
``sleep_time_compute.*`` events on their WebSocket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LiveApi
from tests.realtime.wsclient import WS
from tests.scheduler.plugin_jobs import read_log

STEPS = 12
STEP_S = 0.3


@pytest.fixture
def idle_api(live_factory: Callable[..., LiveApi], monkeypatch: pytest.MonkeyPatch) -> LiveApi:
    monkeypatch.setenv("TEST_JOB_STEPS", str(STEPS))
    monkeypatch.setenv("TEST_JOB_STEP_S", str(STEP_S))
    return live_factory(
        scheduler={
            "enabled": True,
            "idle_after_s": 1.5,
            "cycle_schedule": "* * * * * *",  # look for idle work every second
            "max_cpu_pressure": 100,  # a busy CI machine still counts as idle here
            "max_load_per_core": 1000,
            "activity_write_s": 0,
            "plugins": ["tests.scheduler.plugin_jobs:idle_jobs"],
        }
    )


def runs(api: LiveApi, admin: dict[str, str]) -> list[dict[str, Any]]:
    r = api.client.get("/api/v1/jobs/test.idle/runs", headers=admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_idle_job_yields_to_a_user_within_one_step_and_resumes(idle_api: LiveApi) -> None:
    admin = idle_api.setup_admin()
    ticket = idle_api.client.post("/api/v1/auth/ws/ticket", headers=admin).json()["ticket"]
    ws = WS(idle_api.server.url.replace("http://", "ws://") + f"/ws/chat?t={ticket}")
    data_dir = idle_api.runtime.settings.data_dir
    # Users keep the machine busy: nothing runs.
    for _ in range(8):
        assert idle_api.client.get("/api/v1/user/me", headers=admin).status_code == 200
        time.sleep(0.25)
    assert read_log(data_dir) == []
    # Away: the cycle starts the job.
    deadline = time.time() + 20
    while len(read_log(data_dir)) < 3:
        assert time.time() < deadline, "the idle job never started"
        time.sleep(0.05)
    # A user comes back: the run stops at its next step boundary.
    came_back = time.monotonic()
    assert idle_api.client.get("/api/v1/user/me", headers=admin).status_code == 200
    steps_then = len(read_log(data_dir))
    deadline = time.time() + 10
    while not runs(idle_api, admin) or runs(idle_api, admin)[0]["state"] == "running":
        assert time.time() < deadline, "the job did not yield"
        time.sleep(0.05)
    yielded_after = time.monotonic() - came_back
    first = runs(idle_api, admin)[0]
    assert first["state"] == "yielded" and first["trigger"] == "idle"
    assert len(read_log(data_dir)) <= steps_then + 1  # at most the step in flight
    assert yielded_after < STEP_S * 2 + 1.0
    # Away again: the next cycle goes on from the cursor and finishes, no step twice.
    deadline = time.time() + 40
    while runs(idle_api, admin)[0]["state"] != "succeeded":
        assert time.time() < deadline, runs(idle_api, admin)[:2]
        time.sleep(0.2)
    assert [i for _, _, i in read_log(data_dir)] == list(range(STEPS))
    done = runs(idle_api, admin)
    assert sum(r["result"].get("items", 0) for r in done) == STEPS
    # Admin events: phase start, job end (with what it did), phase end.
    seen: list[dict[str, Any]] = []
    while not any(
        e["type"] == "sleep_time_compute.phase_end" and e["jobs"].get("test.idle") == "succeeded"
        for e in seen
    ):
        seen.append(ws.receive_json())
    types = [e["type"] for e in seen if e["type"].startswith("sleep_time_compute.")]
    assert "sleep_time_compute.phase_start" in types
    ends = [e for e in seen if e["type"] == "sleep_time_compute.job_end"]
    assert {e["state"] for e in ends} >= {"yielded", "succeeded"}
    assert all(e["job"] == "test.idle" and e["energy_method"] == "estimate" for e in ends)
    assert any(e["counts"].get("items", 0) > 0 for e in ends)
    ws.close()


def test_non_admins_get_no_scheduler_events(idle_api: LiveApi) -> None:
    admin = idle_api.setup_admin()
    user = idle_api.create_user(admin, "bob")
    ticket = idle_api.client.post("/api/v1/auth/ws/ticket", headers=user).json()["ticket"]
    ws = WS(idle_api.server.url.replace("http://", "ws://") + f"/ws/chat?t={ticket}")
    assert ws.receive_json()["type"] == "ws.connected"
    deadline = time.time() + 30
    while not runs(idle_api, admin) or runs(idle_api, admin)[0]["state"] != "succeeded":
        assert time.time() < deadline
        time.sleep(0.3)
    messages = []
    try:
        while True:
            messages.append(ws.receive_json(timeout=1.0))
    except TimeoutError:
        pass
    assert not any(m["type"].startswith("sleep_time_compute.") for m in messages)
    ws.close()
