"""Console: the admins' Jobs page (the scheduler's jobs, their runs, run now, pause,
resume, cancel); other users are refused; a server without the scheduler says so."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from mongars.web import jobs_endpoints
from tests.conftest import Api
from tests.web.test_console_http import csrf, login


def post(client: TestClient, path: str, token: str) -> tuple[int, str]:
    """A console form's POST; the page it leads to (the flash, or the error page)."""
    r = client.post(path, data={"csrf_token": token}, follow_redirects=False)
    if r.status_code == 303:
        assert r.headers["location"] == "/admin/jobs"
        return 303, client.get("/admin/jobs").text
    return r.status_code, r.text


def test_jobs_page_runs_pauses_and_resumes(
    api_factory: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_factory(scheduler={"enabled": True})
    api.setup_admin()
    login(api.client)
    page = api.client.get("/admin/jobs")
    assert page.status_code == 200, page.text
    for name in ("training.retention", "scheduler.gc", "training.train"):
        assert f"<code>{name}</code>" in page.text
    assert "This process leads the scheduler" in page.text
    assert 'href="/admin/jobs" aria-current="page"' in page.text
    token = csrf(api.client, "/admin/jobs")

    status, text = post(api.client, "/admin/jobs/training.retention/run", token)
    queued = re.search(r"Job training.retention: run (manual-[\w.-]+) queued", text)
    assert status == 303 and queued, text
    deadline = time.monotonic() + 15
    while True:
        runs = api.client.get("/admin/jobs/training.retention").text
        if "<td>succeeded" in runs or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "<td>succeeded" in runs and "<td>manual</td>" in runs and "deleted: 0" in runs

    status, text = post(api.client, "/admin/jobs/training.retention/pause", token)
    assert status == 303 and "Job training.retention paused." in text
    assert "<td>paused</td>" in text
    status, text = post(api.client, "/admin/jobs/training.retention/run", token)
    assert status == 409 and "job training.retention is paused: resume it first" in text
    status, text = post(api.client, "/admin/jobs/training.retention/resume", token)
    assert status == 303 and "Job training.retention resumed." in text
    assert "<td>paused</td>" not in text

    monkeypatch.setattr(jobs_endpoints, "PAGE", 1)  # the runs page, newest first, one a page
    assert post(api.client, "/admin/jobs/training.retention/run", token)[0] == 303
    runs = api.client.get("/admin/jobs/training.retention").text
    assert queued.group(1) not in runs
    older = re.search(r'href="(/admin/jobs/training.retention\?cursor=[^"]+)">Older runs', runs)
    assert older, runs
    runs = api.client.get(html.unescape(older.group(1))).text
    assert queued.group(1) in runs and "Newest runs" in runs and "Older runs" not in runs

    assert api.client.get("/admin/jobs/no.such.job").status_code == 404
    assert post(api.client, "/admin/jobs/no.such.job/run", token)[0] == 404
    # Without the CSRF token nothing happens.
    r = api.client.post("/admin/jobs/training.retention/pause", follow_redirects=False)
    assert r.status_code == 403 and "<td>paused</td>" not in api.client.get("/admin/jobs").text


def test_jobs_page_is_for_admins_only(api: Api) -> None:
    r = api.client.get("/admin/jobs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/jobs"
    admin = api.setup_admin()
    api.create_user(admin, "alice")
    login(api.client, "alice")
    for path in ("/admin/jobs", "/admin/jobs/scheduler.gc"):
        r = api.client.get(path, follow_redirects=False)
        assert r.status_code == 403 and "admin rights required" in r.text
    assert 'href="/admin/jobs"' not in api.client.get("/chat").text
    token = csrf(api.client, "/chat")
    assert post(api.client, "/admin/jobs/scheduler.gc/run", token)[0] == 403


def test_jobs_page_without_the_scheduler(api_factory: Callable[..., Api]) -> None:
    api = api_factory(scheduler={"enabled": False})
    api.setup_admin()
    login(api.client)
    for path in ("/admin/jobs", "/admin/jobs/scheduler.gc"):
        page = api.client.get(path)
        assert page.status_code == 200 and "The scheduler is off on this server" in page.text
    token = csrf(api.client, "/admin/jobs")
    status, text = post(api.client, "/admin/jobs/scheduler.gc/run", token)
    assert status == 400 and "The scheduler is off on this server" in text
