"""The jobs API against a running scheduler (DBOS on SQLite): list, run, pause, resume,
cancel, runs with energy and pagination, errors; cron schedules; built-in jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.scheduler.plugin_jobs import read_log

PLUGINS = ["tests.scheduler.plugin_jobs:manual_jobs"]


def wait_run(api: Api, admin: dict[str, str], name: str, timeout: float = 20.0) -> dict[str, Any]:
    """The newest run of ``name`` once it has ended."""
    deadline = time.time() + timeout
    while True:
        items = api.client.get(f"/api/v1/jobs/{name}/runs", headers=admin).json()["items"]
        if items and items[0]["state"] not in ("queued", "running", "cancelling"):
            return items[0]
        assert time.time() < deadline, f"{name} did not finish: {items[:1]}"
        time.sleep(0.2)


@pytest.fixture
def sched(api_factory: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("TEST_JOB_STEPS", "3")
    monkeypatch.setenv("TEST_JOB_STEP_S", "0.05")
    return api_factory(scheduler={"enabled": True, "plugins": PLUGINS})


def test_admin_lists_jobs_with_their_schedule_and_state(sched: Api) -> None:
    admin = sched.setup_admin()
    r = sched.client.get("/api/v1/jobs", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leader"] is True
    jobs = {j["name"]: j for j in body["items"]}
    assert {"training.retention", "training.curate", "training.train", "scheduler.gc"} <= set(jobs)
    assert jobs["training.retention"]["schedule"] == "23 * * * *"
    assert jobs["training.retention"]["next_run"] is not None
    assert jobs["training.train"]["idle_only"] is True
    assert jobs["training.train"]["next_run"] is None
    assert all(j["state"] == "idle" and j["last_run"] is None for j in jobs.values())
    # A request was just made: the gate is closed, and says why.
    assert body["idle"] is False and "user activity" in body["idle_reason"]


def test_only_admins_reach_the_jobs_api(sched: Api) -> None:
    admin = sched.setup_admin()
    user = sched.create_user(admin, "bob")
    for method, path in [
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/test.slow/runs"),
        ("post", "/api/v1/jobs/test.slow/run"),
        ("post", "/api/v1/jobs/test.slow/pause"),
    ]:
        assert getattr(sched.client, method)(path, headers=user).status_code == 403
        assert getattr(sched.client, method)(path).status_code == 401


def test_a_run_by_hand_records_steps_counts_cpu_and_energy(sched: Api) -> None:
    admin = sched.setup_admin()
    r = sched.client.post("/api/v1/jobs/test.slow/run", headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "queued" and r.json()["trigger"] == "manual"
    run = wait_run(sched, admin, "test.slow")
    assert run["id"] == r.json()["id"]
    assert run["state"] == "succeeded" and run["steps"] == 3
    assert run["result"] == {"items": 3}
    assert run["energy_method"] == "estimate"  # no RAPL on this machine
    assert run["cpu_s"] >= 0 and run["energy_wh"] >= 0 and run["duration_s"] > 0.1
    data_dir = sched.runtime.settings.data_dir
    assert [i for job, _, i in read_log(data_dir) if job == "test.slow"] == [0, 1, 2]
    jobs = {j["name"]: j for j in sched.client.get("/api/v1/jobs", headers=admin).json()["items"]}
    assert jobs["test.slow"]["last_run"]["id"] == run["id"]
    # Audit log: who ran it.
    audit = sched.client.get("/api/v1/admin/audit", headers=admin).json()
    assert any(e["action"] == "job.run" and e["target"] == "test.slow" for e in audit["items"])


def test_a_failing_job_records_its_error(sched: Api) -> None:
    admin = sched.setup_admin()
    assert sched.client.post("/api/v1/jobs/test.fail/run", headers=admin).status_code == 202
    run = wait_run(sched, admin, "test.fail")
    assert run["state"] == "failed"
    assert run["error"] == "ValueError: a step that always fails"


def test_pause_resume_and_cancel(sched: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = sched.setup_admin()
    r = sched.client.post("/api/v1/jobs/test.slow/pause", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    r = sched.client.post("/api/v1/jobs/test.slow/run", headers=admin)
    assert r.status_code == 409 and "paused" in r.json()["detail"]
    r = sched.client.post("/api/v1/jobs/test.slow/resume", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "idle"
    assert sched.client.post("/api/v1/jobs/test.slow/cancel", headers=admin).status_code == 409
    # A long run, cancelled in its middle, stops at its next step.
    monkeypatch.setenv("TEST_JOB_STEPS", "50")
    monkeypatch.setenv("TEST_JOB_STEP_S", "0.2")
    assert sched.client.post("/api/v1/jobs/test.slow/run", headers=admin).status_code == 202
    r = sched.client.post("/api/v1/jobs/test.slow/run", headers=admin)
    assert r.status_code == 409 and "already" in r.json()["detail"]
    data_dir = sched.runtime.settings.data_dir
    deadline = time.time() + 20
    while len(read_log(data_dir)) < 2:
        assert time.time() < deadline
        time.sleep(0.1)
    assert sched.client.post("/api/v1/jobs/test.slow/cancel", headers=admin).status_code == 200
    run = wait_run(sched, admin, "test.slow")
    assert run["state"] == "cancelled"
    assert run["steps"] < 10
    assert len(read_log(data_dir)) <= run["steps"] + 1


def test_runs_page_newest_first_with_a_cursor(sched: Api) -> None:
    admin = sched.setup_admin()
    ids = []
    for _ in range(3):
        ids.append(sched.client.post("/api/v1/jobs/test.fail/run", headers=admin).json()["id"])
        wait_run(sched, admin, "test.fail")
    page = sched.client.get("/api/v1/jobs/test.fail/runs?limit=2", headers=admin).json()
    assert [r["id"] for r in page["items"]] == ids[::-1][:2]
    rest = sched.client.get(
        f"/api/v1/jobs/test.fail/runs?limit=2&cursor={page['next_cursor']}", headers=admin
    ).json()
    assert [r["id"] for r in rest["items"]] == ids[:1] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/jobs/no.such.job/runs", 404),
        ("/api/v1/jobs/test.fail/runs?limit=0", 422),
        ("/api/v1/jobs/test.fail/runs?limit=9999", 422),
        ("/api/v1/jobs/test.fail/runs?cursor=%E2%9C%93not-a-cursor", 422),
        ("/api/v1/jobs/" + "x" * 65 + "/runs", 422),
    ],
)
def test_bad_requests_get_clear_errors(sched: Api, path: str, status: int) -> None:
    admin = sched.setup_admin()
    r = sched.client.get(path, headers=admin)
    assert r.status_code == status, r.text
    assert r.json()["detail"]
    if status == 404:
        assert sched.client.post("/api/v1/jobs/no.such.job/run", headers=admin).status_code == 404


def test_the_scheduler_off_says_so(api_factory: Callable[..., Api]) -> None:
    api = api_factory()
    admin = api.setup_admin()
    r = api.client.get("/api/v1/jobs", headers=admin)
    assert r.status_code == 400 and r.json()["code"] == "feature_disabled"


def test_a_cron_schedule_fires_every_time(
    api_factory: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    api = api_factory(
        scheduler={"enabled": True, "plugins": ["tests.scheduler.plugin_jobs:tick_jobs"]}
    )
    admin = api.setup_admin()
    # DBOS picks a new schedule up within its polling interval (5 s), then every second.
    deadline = time.monotonic() + 30
    while True:
        runs = api.client.get("/api/v1/jobs/test.tick/runs", headers=admin).json()["items"]
        done = [r for r in runs if r["state"] == "succeeded"]
        if len(done) >= 3:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    assert len(done) <= time.monotonic() - began + 1  # never more than once a second
    assert all(r["trigger"] == "schedule" and r["result"] == {"ticks": 1} for r in done)
    # One workflow per fire time: no time ran twice.
    assert len({r["id"] for r in runs}) == len(runs)


def test_a_bad_cron_in_settings_fails_the_start(api_factory: Callable[..., Api]) -> None:
    with pytest.raises(ValueError, match="invalid cron"):
        api_factory(scheduler={"enabled": True, "schedules": {"scheduler.gc": "every day"}})
