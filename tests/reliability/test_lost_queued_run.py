"""A run asked by hand is recorded (``queued``), then queued in DBOS. A crash between
the two left the row ``queued`` for ever, and every later run of that job was refused
as "already running or queued": the leader's start now ends such a row as failed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from mongars.db import migrate
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.scheduler.repository import SchedulerRepository
from tests.conftest import Api, make_settings

LOST = "manual-scheduler.gc-lostbycrash"


def test_a_run_recorded_but_never_queued_does_not_block_its_job(
    api_factory: Callable[..., Api], tmp_path: Path
) -> None:
    url = make_settings(tmp_path).resolved_database_url
    migrate.upgrade(url)

    async def crashed_trigger() -> None:  # what the crash left: the row, no workflow
        engine = create_engine(url)
        async with unit_of_work(create_session_factory(engine)) as session:
            await SchedulerRepository(session).add_queued(LOST, "scheduler.gc")
        await engine.dispose()

    asyncio.run(crashed_trigger())
    api = api_factory(scheduler={"enabled": True})
    admin = api.setup_admin()
    runs = api.client.get("/api/v1/jobs/scheduler.gc/runs", headers=admin).json()["items"]
    lost = next(r for r in runs if r["id"] == LOST)
    assert lost["state"] == "failed", lost
    assert lost["error"] == "interrupted: the server stopped before it was queued"
    r = api.client.post("/api/v1/jobs/scheduler.gc/run", headers=admin)
    assert r.status_code == 202, r.text
