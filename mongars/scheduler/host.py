"""What each workflow step does, on the app's event loop: record the run, run one step
of the job, decide whether to stop, and plan the idle cycle."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.runtime import Runtime
from mongars.scheduler.energy import EnergyMeter
from mongars.scheduler.events import notify_admins
from mongars.scheduler.idle import IdleGate
from mongars.scheduler.jobs import JobContext, JobSpec
from mongars.scheduler.repository import SchedulerRepository

log = logging.getLogger(__name__)

ERROR_CHARS = 2000


class JobHost:
    def __init__(
        self,
        runtime: Runtime,
        specs: dict[str, JobSpec],
        gate: IdleGate,
        meter: EnergyMeter,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.scheduler
        self.specs = specs
        self.gate = gate
        self.meter = meter
        self.loop: asyncio.AbstractEventLoop | None = None  # the app's, set when it leads
        self.closing = False  # the server stops: running jobs yield at their next check

    # -- one run ----------------------------------------------------------------------

    async def begin(self, run_id: str, name: str, trigger: str) -> dict[str, Any]:
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            existing = await repo.run(run_id)
            if existing is not None and existing.state == "cancelled":
                return {"state": "skipped"}  # cancelled while queued
            if name not in self.specs:
                await repo.begin_run(run_id, name, trigger)
                return {"state": "failed", "error": f"no job named {name!r} on this server"}
            state = await repo.state(name)
            others = [r for r in await repo.running(name) if r.id != run_id]
            if existing is None and (state.paused or others or self._disabled(name)):
                return {"state": "skipped"}
            await repo.begin_run(run_id, name, trigger)
        return {"state": "continue"}

    async def step(self, run_id: str, name: str, trigger: str, index: int) -> dict[str, Any]:
        spec = self.specs[name]
        reason = await self.stop_reason(run_id, name, trigger)
        if reason is not None:
            return {"state": reason}
        async with unit_of_work(self.runtime.sessions) as session:
            memo = dict((await SchedulerRepository(session).state(name)).memo)
        ctx = JobContext(
            run_id,
            name,
            trigger,
            index,
            self.runtime,
            memo,
            lambda: self.stop_reason(run_id, name, trigger),
            lambda memo: self._save_memo(name, memo),
            self.gate.activity.wait,
        )
        reading = self.meter.start()
        try:
            result = await spec.step(ctx)
        except Exception as exc:  # recorded on the run; the scheduler goes on
            log.exception("job %s failed at step %d", name, index)
            return {"state": "failed", "error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]}
        usage = self.meter.stop(reading)
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            run = await repo.run(run_id)
            assert run is not None
            totals = dict(run.result)
            for key, value in result.counts.items():
                totals[key] = int(totals.get(key, 0)) + int(value)
            await repo.update_run(
                run_id,
                steps=index + 1,
                progress=result.progress[:500],
                result=totals,
                cpu_s=run.cpu_s + usage.cpu_s,
                energy_wh=run.energy_wh + usage.energy_wh,
                energy_method=usage.method,
            )
            await repo.set_memo(name, ctx.memo)
            started = run.started_at.timestamp()
            energy = run.energy_wh + usage.energy_wh
        if result.done:
            return {"state": "succeeded"}
        if time.time() - started > self.settings.budget_s:
            return {"state": "yielded", "error": "time budget spent; goes on next run"}
        if energy > self.settings.energy_budget_wh:
            return {"state": "yielded", "error": "energy budget spent; goes on next run"}
        return {"state": "continue"}

    async def finish(self, run_id: str, name: str, outcome: dict[str, Any]) -> dict[str, Any]:
        state = outcome["state"]
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            await repo.update_run(
                run_id, state=state, error=outcome.get("error"), finished_at=utcnow()
            )
            run = await repo.run(run_id)
        if run is not None:
            await notify_admins(
                self.runtime,
                "job_end",
                job=name,
                run_id=run_id,
                state=state,
                counts=run.result,
                steps=run.steps,
                cpu_s=round(run.cpu_s, 3),
                energy_wh=round(run.energy_wh, 6),
                energy_method=run.energy_method,
            )
        return {"state": state, "error": outcome.get("error")}

    async def stop_reason(self, run_id: str, name: str, trigger: str) -> str | None:
        """paused | cancelled | yielded (a user came back, or the server stops) | None."""
        if self.closing:
            return "yielded"
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            run = await repo.run(run_id)
            paused = (await repo.state(name)).paused
        if run is not None and run.state == "cancelling":
            return "cancelled"
        if paused:
            return "paused"
        spec = self.specs.get(name)
        # A run an admin asked for ignores the idle gate; the idle cycle's yields.
        if spec is not None and spec.idle_only and trigger == "idle" and self.settings.idle_gate:
            since = run.started_at.timestamp() if run is not None else time.time()
            if self.runtime.generating > 0 or await self.gate.activity.latest() > since:
                return "yielded"
        return None

    async def _save_memo(self, name: str, memo: dict[str, Any]) -> None:
        async with unit_of_work(self.runtime.sessions) as session:
            await SchedulerRepository(session).set_memo(name, memo)

    def _disabled(self, name: str) -> bool:
        return name in self.settings.disabled

    # -- the idle cycle ---------------------------------------------------------------

    async def plan_cycle(self) -> dict[str, Any]:
        """The idle-only jobs that have work, in priority order; none unless idle."""
        if self.closing:
            return {"jobs": []}
        gate = await self.gate.check()
        if not gate.idle:
            return {"jobs": [], "reason": gate.reason}
        async with unit_of_work(self.runtime.sessions) as session:
            repo = SchedulerRepository(session)
            running = await repo.running()
            states = await repo.states()
        if any(r.trigger == "idle" for r in running):
            return {"jobs": [], "reason": "a cycle is running"}
        busy = {r.name for r in running}
        due: list[str] = []
        for spec in sorted(self.specs.values(), key=lambda s: (s.priority, s.name)):
            state = states.get(spec.name)
            if not spec.idle_only or spec.name in busy or self._disabled(spec.name):
                continue
            if state is not None and state.paused:
                continue
            try:
                if await spec.due(self.runtime, dict(state.memo) if state else {}):
                    due.append(spec.name)
            except Exception:
                log.exception("could not tell whether job %s is due", spec.name)
        if due:
            await notify_admins(self.runtime, "phase_start", phase="sommeil", jobs=due)
        return {"jobs": due, "started": time.time()}

    async def end_cycle(self, plan: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        states = {name: out.get("state") for name, out in results.items()}
        await notify_admins(
            self.runtime,
            "phase_end",
            phase="sommeil",
            jobs=states,
            duration_s=round(time.time() - float(plan.get("started", time.time())), 3),
            yielded=any(s == "yielded" for s in states.values()),
        )
        return {"jobs": states}
