"""Starts training workers and follows them: events in, catalogue rows and metrics out."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.observability.metrics import Metrics
from mongars.settings import Settings
from mongars.training import spec as run_spec
from mongars.training.repository import TrainingRepository

log = logging.getLogger("mongars.training")

POLL_S = 0.5


@dataclass
class _Watch:
    pid: int
    process: asyncio.subprocess.Process | None
    task: asyncio.Task[None] | None = None
    offset: int = 0
    cpu_s: float = 0.0
    final: dict[str, Any] | None = None  # the verdict of the worker's last event


class RunSupervisor:
    """One per server (or CLI command). ``busy`` says whether users are chatting, so the
    worker can use fewer threads meanwhile."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.metrics = metrics
        self.busy = busy
        self._watches: dict[str, _Watch] = {}
        self._listener: Callable[[dict[str, Any]], None] | None = None
        # Called with a run's id once it completed (the adapter registry registers it).
        self.on_completed: list[Callable[[str], Awaitable[Any]]] = []
        self.frozen = False

    def run_dir(self, run_id: str) -> Path:
        return run_spec.runs_root(self.settings) / run_id

    def lock_held(self) -> bool:
        """Whether a worker (of this or another process on this machine) trains now."""
        path = run_spec.lock_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    async def launch(self, run_id: str, resume: bool) -> None:
        run_dir = self.run_dir(run_id)
        args = [sys.executable, "-m", "mongars.training.worker", str(run_dir)]
        if resume:
            args.append("--resume")
        try:
            with (run_dir / run_spec.LOG).open("ab") as logfile:
                process = await asyncio.create_subprocess_exec(
                    *args,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=logfile,
                    start_new_session=True,  # a Ctrl-C meant for the server is not the worker's
                )
        except OSError as exc:  # the run must not stay queued (it would block every other)
            values = {"status": "failed", "error": f"could not start the worker: {exc}"}
            await self._update(run_id, _Watch(0, None), values)
            raise
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            run = await repo.run(run_id)
            if run is not None:
                await repo.update_run(
                    run, status="running", pid=process.pid, started_at=run.started_at or utcnow()
                )
        watch = _Watch(process.pid, process, offset=_size(run_dir / run_spec.PROGRESS))
        self._watches[run_id] = watch
        if self.frozen:  # started while an answer is generated: it waits for its end
            _signal_group(process.pid, signal.SIGSTOP)
        watch.task = asyncio.create_task(self._follow(run_id, watch), name=f"training-{run_id}")

    async def wait(
        self, run_id: str, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """Until the run's worker exits (the CLI shows progress through ``on_event``)."""
        watch = self._watches.get(run_id)
        if watch is None or watch.task is None:
            return
        self._listener = on_event
        await asyncio.shield(watch.task)

    def signal_pause(self, run_id: str, pid: int | None) -> None:
        """The worker checkpoints at its next step, then exits. ``pid`` (the run's row)
        reaches a worker another process started (the CLI's, or a previous server's)."""
        watch = self._watches.get(run_id)
        target = watch.pid if watch is not None else pid
        if target:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGTERM)

    async def kill(self, run_id: str, pid: int | None) -> None:
        watch = self._watches.pop(run_id, None)
        if watch is None:
            if pid and _alive(pid):  # started elsewhere: its own process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watch.pid, signal.SIGKILL)
        if watch.process is not None:
            await watch.process.wait()
        if watch.task is not None:
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch.task

    async def recover(self) -> None:
        """At start-up: runs left active by a stopped server. A worker still alive is
        followed again; a dead one leaves its run paused, resumable from its checkpoint."""
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            for run in await repo.active_runs():
                if run.pid and _alive(run.pid) and self.lock_held():
                    run_dir = self.run_dir(run.id)
                    watch = _Watch(run.pid, None, offset=_size(run_dir / run_spec.PROGRESS))
                    self._watches[run.id] = watch
                    watch.task = asyncio.create_task(self._follow(run.id, watch))
                else:
                    await repo.update_run(
                        run,
                        status="paused",
                        pid=None,
                        eta_s=None,
                        error="interrupted (the server stopped): resume to continue",
                    )

    def freeze(self, on: bool) -> None:
        """While an answer is generated, this process's workers are stopped (SIGSTOP)
        and continue after (SIGCONT): on a small machine even a niced worker with one
        thread doubles the time to first token. Signals asked meanwhile (pause) wait in
        the worker until it continues."""
        if on == self.frozen or not self.settings.training.freeze_while_generating:
            return
        self.frozen = on
        for watch in self._watches.values():
            _signal_group(watch.pid, signal.SIGSTOP if on else signal.SIGCONT)

    async def close(self, grace_s: float = 15.0) -> None:
        """Server shutdown: ask running workers to pause (a checkpoint is written at their
        next step) and wait a little; the next start finds their runs paused, or follows
        a worker that is still finishing its step."""
        waiting = []
        for watch in self._watches.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(watch.pid, signal.SIGTERM)
            _signal_group(watch.pid, signal.SIGCONT)  # a frozen worker must reach its step
            if watch.task is not None:
                waiting.append(watch.task)
        if waiting:
            await asyncio.wait(waiting, timeout=grace_s)
        for watch in self._watches.values():
            if watch.task is not None:
                watch.task.cancel()
        for watch in list(self._watches.values()):
            if watch.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await watch.task
        self._watches.clear()

    async def _follow(self, run_id: str, watch: _Watch) -> None:
        progress = self.run_dir(run_id) / run_spec.PROGRESS
        busy_sent = False  # the worker starts with all its threads
        started = False  # signal only once the worker has its handlers (its "start" event)
        try:
            while True:
                exited = await self._exited(watch)
                events = _read_events(progress, watch)
                for event in events:
                    started = started or event.get("event") == "start"
                    await self._apply(run_id, watch, event)
                if exited:
                    await self._finish(run_id, watch)
                    return
                busy = bool(self.busy and self.busy())
                if started and busy is not busy_sent:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(watch.pid, signal.SIGUSR1 if busy else signal.SIGUSR2)
                    busy_sent = busy
        finally:
            if self._watches.get(run_id) is watch:
                del self._watches[run_id]

    async def _exited(self, watch: _Watch) -> bool:
        if watch.process is not None:
            try:
                await asyncio.wait_for(watch.process.wait(), POLL_S)
                return True
            except TimeoutError:
                return False
        await asyncio.sleep(POLL_S)
        return not _alive(watch.pid)

    async def _apply(self, run_id: str, watch: _Watch, event: dict[str, Any]) -> None:
        if self._listener is not None:
            self._listener(event)
        kind = event.get("event")
        values: dict[str, Any] = {}
        if kind == "step":
            values = {
                "step": event["step"],
                "total_steps": event["total_steps"],
                "loss": event.get("loss"),
                "eta_s": event.get("eta_s"),
            }
            self._record_metrics(watch, event)
        elif kind == "start":
            values = {"total_steps": event.get("total_steps", 0), "step": event.get("step", 0)}
            if event.get("mlflow_run_id"):
                values["mlflow_run_id"] = event["mlflow_run_id"]
        elif kind == "evaluated":
            values = {"metrics": event.get("metrics", {})}
        # A final verdict counts once the worker has exited (and let go of the
        # trainer lock), so that a run reported paused can be resumed at once.
        elif kind == "done":
            watch.final = {
                "status": "completed",
                "metrics": event.get("metrics", {}),
                "adapter_sha256": event.get("adapter_sha256"),
                "step": event.get("step"),
                "eta_s": 0.0,
                "finished_at": utcnow(),
            }
        elif kind == "paused":
            watch.final = {"status": "paused", "eta_s": None, "step": event.get("step", 0)}
        elif kind == "error":
            watch.final = {
                "status": "failed",
                "error": event.get("message"),
                "eta_s": None,
                "finished_at": utcnow(),
            }
        if values:
            await self._update(run_id, watch, values)

    async def _finish(self, run_id: str, watch: _Watch) -> None:
        """The worker exited: its final event decides; without one, the run failed."""
        values: dict[str, Any] = dict(watch.final or {})
        if not values:
            code = watch.process.returncode if watch.process is not None else None
            tail = _tail(self.run_dir(run_id) / run_spec.LOG)
            values = {
                "status": "failed",
                "finished_at": utcnow(),
                "eta_s": None,
                "error": f"the training worker exited ({code}) without finishing: {tail}",
            }
        values["pid"] = None
        await self._update(run_id, watch, values)
        if values.get("status") == "completed":
            for hook in self.on_completed:
                try:
                    await hook(run_id)
                except Exception:  # the run stays completed; registering can be redone
                    log.exception("after run %s completed", run_id)

    async def _update(self, run_id: str, watch: _Watch, values: dict[str, Any]) -> None:
        """Write what this worker reports, unless the run is cancelled or another
        worker (a resume) has taken it over."""
        async with unit_of_work(self.sessions) as session:
            repo = TrainingRepository(session)
            run = await repo.run(run_id)
            if run is None or run.status == "cancelled":
                return
            if run.pid is not None and run.pid != watch.pid:
                return
            if values.get("step") is None:
                values.pop("step", None)
            await repo.update_run(run, **values)

    def _record_metrics(self, watch: _Watch, event: dict[str, Any]) -> None:
        if self.metrics is None:
            return
        labels = {"objective": str(event.get("objective", ""))}
        self.metrics.training_steps.add(1, labels)
        self.metrics.training_tokens.add(int(event.get("step_tokens", 0)), labels)
        if event.get("steps_per_s") is not None:
            self.metrics.training_steps_per_second.set(float(event["steps_per_s"]), labels)
        if event.get("tokens_per_s") is not None:
            self.metrics.training_tokens_per_second.set(float(event["tokens_per_s"]), labels)
        if event.get("loss") is not None:
            self.metrics.training_loss.set(float(event["loss"]), labels)
        cpu = float(event.get("cpu_s", watch.cpu_s))
        if cpu > watch.cpu_s:
            joules = (cpu - watch.cpu_s) * self.settings.training.watts_per_core
            self.metrics.training_energy.add(joules, labels)
            watch.cpu_s = cpu


def _read_events(path: Path, watch: _Watch) -> list[dict[str, Any]]:
    """New complete lines of progress.jsonl since the last read."""
    try:
        with path.open("rb") as f:
            f.seek(watch.offset)
            data = f.read()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    watch.offset += end
    events = []
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, chars: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-chars:] or "(empty log)"
