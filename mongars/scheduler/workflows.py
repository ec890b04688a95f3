"""The DBOS workflows behind every job run, and the bridge to the app's event loop.

DBOS runs a workflow (and each of its steps) on its own worker threads and records
every step's result in its system database; after a crash the leader's next start
replays the workflow, skipping the steps already recorded. Our steps are thin: each
runs one coroutine of the :class:`~mongars.scheduler.host.JobHost` on the app's event
loop (where the database engine, the model and the bus live) and returns plain JSON.

The decorators below only register functions in DBOS's registry (no I/O). DBOS is one
instance per process, so one app per process hosts the scheduler (:func:`bind`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbos import DBOS

if TYPE_CHECKING:
    from mongars.scheduler.host import JobHost

JOB_WORKFLOW = "mongars.job"
CYCLE_WORKFLOW = "mongars.sommeil"
SCHEDULED_WORKFLOW = "mongars.scheduled"
# Jobs run by hand go through this queue (any process can enqueue; the leader runs them).
MANUAL_QUEUE = "mongars_manual"

_host: JobHost | None = None


def bind(host: JobHost | None) -> None:
    global _host
    _host = host


def bound() -> JobHost | None:
    return _host


def _call(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    host = _host
    if host is None or host.loop is None:
        coro.close()
        raise RuntimeError("no scheduler is running in this process")
    return asyncio.run_coroutine_threadsafe(coro, host.loop).result()


def _host_now() -> JobHost:
    assert _host is not None, "no scheduler is running in this process"
    return _host


@DBOS.step(name="mongars.job.begin")
def _begin(run_id: str, name: str, trigger: str) -> dict[str, Any]:
    return _call(_host_now().begin(run_id, name, trigger))


@DBOS.step(name="mongars.job.step")
def _step(run_id: str, name: str, trigger: str, index: int) -> dict[str, Any]:
    return _call(_host_now().step(run_id, name, trigger, index))


@DBOS.step(name="mongars.job.finish")
def _finish(run_id: str, name: str, outcome: dict[str, Any]) -> dict[str, Any]:
    return _call(_host_now().finish(run_id, name, outcome))


def _run(run_id: str, name: str, trigger: str) -> dict[str, Any]:
    outcome = _begin(run_id, name, trigger)
    if outcome["state"] == "skipped":  # paused, or a run of it is active: nothing recorded
        return outcome
    index = 0
    while outcome["state"] == "continue":
        outcome = _step(run_id, name, trigger, index)
        index += 1
    return _finish(run_id, name, outcome)


@DBOS.workflow(name=JOB_WORKFLOW)
def job_workflow(name: str, trigger: str) -> dict[str, Any]:
    """One run of one job: begin, steps until done (or stopped), finish."""
    run_id = DBOS.workflow_id
    assert run_id is not None
    return _run(run_id, name, trigger)


@DBOS.workflow(name=SCHEDULED_WORKFLOW)
def scheduled_job(scheduled_at: datetime, context: Any) -> None:
    """A cron schedule fired. Every process fires it; DBOS keeps one workflow per
    (schedule, time), so the job runs once."""
    run_id = DBOS.workflow_id
    assert run_id is not None
    _run(run_id, str(context["job"]), "schedule")


@DBOS.step(name="mongars.sommeil.plan")
def _plan() -> dict[str, Any]:
    return _call(_host_now().plan_cycle())


@DBOS.step(name="mongars.sommeil.end")
def _cycle_end(plan: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return _call(_host_now().end_cycle(plan, results))


@DBOS.workflow(name=CYCLE_WORKFLOW)
def sommeil_cycle(scheduled_at: datetime, context: Any) -> None:
    """The idle cycle: when the machine is idle, run the due idle-only jobs in
    priority order, each as a child workflow; stop at the first that yields."""
    plan = _plan()
    if not plan["jobs"]:
        return
    results: dict[str, Any] = {}
    for name in plan["jobs"]:
        handle = DBOS.start_workflow(job_workflow, name, "idle")
        outcome = handle.get_result()
        results[name] = outcome
        if outcome.get("state") not in ("succeeded", "skipped", "failed"):
            break  # yielded to a user, paused, cancelled: the rest waits for the next cycle
    _cycle_end(plan, results)
