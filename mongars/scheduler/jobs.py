"""What a job is: a name, when it runs, and one step of its work, called until done.

A step is the unit the scheduler records (a DBOS step): after a crash the run goes
on from the first step not recorded as done, so a step must be idempotent (it may run
again if the crash came in its middle). Between steps the scheduler stops the run
when the job is paused or cancelled, or, for an idle-only job, when a user comes back.
A step that lasts (training) polls :meth:`JobContext.should_stop` itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mongars.runtime import Runtime


@dataclass
class StepResult:
    done: bool
    counts: dict[str, int] = field(default_factory=dict)  # added up over the run
    progress: str = ""


@dataclass
class JobContext:
    run_id: str
    name: str
    trigger: str  # schedule | idle | manual
    index: int  # this step's number in the run, from 0
    runtime: Runtime
    # Kept between runs (a cursor, the last time something was done); saved after each step.
    memo: dict[str, Any]
    _should_stop: Callable[[], Awaitable[str | None]]
    _save_memo: Callable[[dict[str, Any]], Awaitable[None]]
    _wait: Callable[[float], Awaitable[None]]

    async def should_stop(self) -> str | None:
        """Why the run must stop now (paused, cancelled, yielded), or None."""
        return await self._should_stop()

    async def pause(self, seconds: float) -> None:
        """Sleep between checks of a long step, waking at once when a user shows up in
        this process (so a yield does not wait for the end of the sleep)."""
        await self._wait(seconds)

    async def save_memo(self) -> None:
        """Now, not only after the step: a step that starts something it must find
        again after a crash (a training run) records it at once."""
        await self._save_memo(self.memo)


Step = Callable[[JobContext], Awaitable[StepResult]]
Due = Callable[[Runtime, dict[str, Any]], Awaitable[bool]]


async def always(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    step: Step
    # Cron (5 fields, or 6 with seconds first); None: run by the idle cycle or by hand.
    schedule: str | None = None
    # Runs only while the machine is idle, and stops when a user comes back.
    idle_only: bool = False
    # Order within the idle cycle (lower first).
    priority: int = 100
    # Whether the idle cycle has work for it (cheap: no run is recorded when it has none).
    due: Due = always
