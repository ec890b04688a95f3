"""Rows made by hand for evolution tests: turns answered by an adapter version (or the
base model) with thumbs down on some, feedback, job runs, and adapter versions."""

from __future__ import annotations

import uuid
from typing import Any

from mongars.conversation.models import Thread, Turn
from mongars.db.engine import unit_of_work
from mongars.feedback.models import Feedback
from mongars.scheduler.models import JobRun
from tests.adapters.factory import add_run
from tests.conftest import Api

# The tests' machine may be busy: CPU pressure never decides anything here.
CALM = {"max_cpu_pressure": 100.0, "max_load_per_core": 10_000.0}


def add_turns(api: Api, version: int | None, n: int, down: int = 0, up: int = 0) -> None:
    """``n`` completed turns of ``version``; the first ``down`` rated down, the next
    ``up`` rated up (by the admin, user 1)."""
    runtime = api.runtime

    async def insert() -> None:
        async with unit_of_work(runtime.sessions) as session:
            thread = Thread(id=uuid.uuid4().hex, user_id=1, title="t")
            session.add(thread)
            await session.flush()
            turns = [
                Turn(
                    thread_id=thread.id,
                    user_id=1,
                    query=f"q{i}",
                    response=f"a{i}",
                    model="scripted",
                    prompt_tokens=3,
                    completion_tokens=3,
                    latency_ms=float(100 + i),
                    adapter_version=version,
                )
                for i in range(n)
            ]
            session.add_all(turns)
            await session.flush()
            for i, turn in enumerate(turns[: down + up]):
                rating = "down" if i < down else "up"
                session.add(Feedback(turn_id=turn.id, user_id=1, rating=rating))

    api.client.portal.call(insert)


def add_job_run(api: Api, name: str, energy_wh: float) -> None:
    async def insert() -> None:
        async with unit_of_work(api.runtime.sessions) as session:
            session.add(
                JobRun(
                    id=uuid.uuid4().hex,
                    name=name,
                    trigger="idle",
                    state="succeeded",
                    result={},
                    cpu_s=12.0,
                    energy_wh=energy_wh,
                )
            )

    api.client.portal.call(insert)


def active_versions(api: Api, count: int) -> list[int]:
    """``count`` adapter versions, activated in order (the last one is active; each one's
    predecessor is the one before, the first one's the base model)."""
    runtime, portal = api.runtime, api.client.portal
    ids = []
    for i in range(count):
        out: Any = portal.call(runtime.adapters.register_run, add_run(runtime, portal, b"a%d" % i))
        portal.call(runtime.adapters.approve, out.id, "admin", "")
        portal.call(runtime.adapters.activate, out.id, "admin", "")
        ids.append(out.id)
    return ids


def active_id(api: Api) -> int | None:
    pointer: Any = api.client.portal.call(api.runtime.adapters.pointer)
    return pointer.active.id if pointer.active is not None else None
