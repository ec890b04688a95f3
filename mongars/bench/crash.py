"""`mongars bench crash`: kill -9 the server under load, again and again; nothing
acknowledged may be lost, duplicated or half-written.

Per database (SQLite, PostgreSQL), one data folder and one database across rounds.
Each round starts the real app (`mongars.bench.loadserver ... echo`: its model answers
a known function of the message, so the stored text can be checked exactly) with
memory, documents and the scheduler on, drives concurrent clients (REST, SSE and
WebSocket chat, document uploads, feedback, job runs asked by an admin; see
crash_clients.py) and SIGKILLs the server's process group at a random (seeded)
moment. After the last round the server starts once more and gets a bounded time to
catch up (memory indexing, recovered job runs); then everything the clients sent is
checked against the database (crash_audit.py). The idle gate is off and the idle
cycle runs every 2 s, so idle jobs run (and are killed) under load too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from mongars.bench import pgserver
from mongars.bench.common import PASSWORD, create_users, free_port
from mongars.bench.crash_audit import Findings, Snapshot, check, snapshot
from mongars.bench.crash_clients import Account, Admin, Client, Ledger
from mongars.db.base import utcnow
from mongars.db.engine import create_engine, create_session_factory
from mongars.settings import Settings

ADMIN = "crash-admin"
USERS = 4
ERROR_MARKERS = ("Traceback", "ERROR:")


@dataclass(frozen=True)
class CrashOptions:
    rounds: int = 20
    concurrency: int = 6
    seed: int = 0
    kill_min_s: float = 0.5  # the kill comes this long after the server is ready...
    kill_max_s: float = 5.0  # ... at most this long
    token_interval_s: float = 0.02  # the echo model's pace: kills land mid-answer
    catch_up_s: float = 120.0  # the last start's bounded wait for indexing and jobs
    ready_timeout_s: float = 300.0
    server_env: dict[str, str] = field(default_factory=dict)  # more settings (MONGARS_*)


@dataclass
class CrashReport:
    db: str
    rounds: int
    kills: int
    findings: Findings
    memory_lag_s: float | None  # None: not caught up within catch_up_s
    wall_s: float
    server_errors: list[str]
    starts_s: list[float] = field(default_factory=list)  # each start until /ready
    # requests that failed while the server was up (not violations: never acknowledged)
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.findings.violations == 0 and self.memory_lag_s is not None


class Server:
    """The app in its own process group (SIGKILLed whole), output appended to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, opts: CrashOptions) -> None:
        began = time.monotonic()
        self.ready_s = 0.0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = ["-m", "mongars.bench.loadserver", str(self.port), "echo"]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, *argv, str(opts.token_interval_s)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + opts.ready_timeout_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    self.ready_s = time.monotonic() - began
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited during start-up; see {log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the server was not ready in {opts.ready_timeout_s:.0f} s")
            time.sleep(0.2)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()


def server_env(data_dir: Path, database_url: str, opts: CrashOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGARS_")}
    env.update(
        MONGARS_DATA_DIR=str(data_dir),
        MONGARS_DATABASE_URL=database_url,
        MONGARS_OFFLINE="true",
        MONGARS_LOG_LEVEL="warning",
        MONGARS_EVOLUTION__ENABLED="false",
        MONGARS_RATE_LIMITS__ENABLED="false",  # the load is the point
        MONGARS_SCHEDULER__IDLE_GATE="false",  # idle jobs run under load (and get killed)
        MONGARS_SCHEDULER__CYCLE_SCHEDULE="*/2 * * * * *",
        # the "auto" choice times both precisions at every start; vectors agree anyway
        MONGARS_MEMORY__EMBED_PRECISION="float32",
    )
    env.update(opts.server_env)
    return env


def login(url: str, name: str) -> Account:
    r = httpx.post(f"{url}/token", data={"username": name, "password": PASSWORD}, timeout=60)
    r.raise_for_status()
    return Account(name, r.json()["access_token"])


async def drive(
    url: str,
    accounts: list[Account],
    admin: Account,
    ledger: Ledger,
    opts: CrashOptions,
    round_no: int,
    server: Server,
    kill_after: float,
) -> None:
    """Clients until the kill; what they had in flight is never acknowledged."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            Client(
                url,
                accounts[n % len(accounts)],
                ledger,
                random.Random(f"{opts.seed}-{round_no}-{n}"),
                f"r{round_no:02d}c{n}",
                stop,
            ).run(opening=n)
        )
        for n in range(opts.concurrency)
    ]
    tasks.append(
        asyncio.create_task(
            Admin(url, admin, ledger, random.Random(f"{opts.seed}-{round_no}"), stop).run()
        )
    )
    try:
        await asyncio.sleep(kill_after)
        stop.set()
        ledger.kills.append(utcnow())
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.2)  # clients see the connections drop
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def catch_up(
    url: str, ledger: Ledger, opts: CrashOptions, started: float
) -> tuple[Snapshot, float | None]:
    """Poll until every completed turn is indexed and no job run is open (or the
    deadline); the last snapshot and the memory lag since ``started``."""
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    lag: float | None = None
    acked_runs = {j.run_id for j in ledger.jobs}
    try:
        while True:
            snap = await snapshot(sessions)
            if lag is None and snap.unindexed() == 0:
                lag = time.monotonic() - started
            settled = not snap.open_runs() and acked_runs <= set(snap.runs)
            if (lag is not None and settled) or time.monotonic() - started > opts.catch_up_s:
                return snap, lag
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def run_crash(
    db: str,
    opts: CrashOptions,
    workdir: Path,
    postgres_url: str = "",
    console: Console | None = None,
) -> CrashReport:
    """All rounds on one database (``postgres_url``: a server where a fresh database is
    made and dropped after), then the catch-up and the checks."""
    console = console or Console(stderr=True)
    began = time.monotonic()
    data_dir = workdir / db
    data_dir.mkdir(parents=True)
    (data_dir / "models").symlink_to(_shared(workdir / "models"))  # the ONNX export, once
    database_url, dbname = "", ""
    if db == "postgres":
        dbname = f"crash_{uuid.uuid4().hex[:10]}"
        database_url = asyncio.run(pgserver.create_database(postgres_url, dbname))
    try:
        settings = Settings(_env_file=None, data_dir=data_dir, database_url=database_url)  # type: ignore[call-arg]
        names = [f"crash-u{n}" for n in range(min(USERS, opts.concurrency))]
        create_users(settings, [*names, ADMIN], admins=[ADMIN])
        env = server_env(data_dir, database_url, opts)
        log = data_dir / "server.log"
        ledger, admin = Ledger(), Account(ADMIN, "")
        accounts: list[Account] = []
        rng = random.Random(opts.seed)
        starts: list[float] = []
        for round_no in range(opts.rounds):
            server = Server(env, log, opts)
            starts.append(server.ready_s)
            kill_after = rng.uniform(opts.kill_min_s, opts.kill_max_s)
            try:
                if not accounts:  # tokens outlive restarts (the secret is in the data folder)
                    accounts = [login(server.url, name) for name in names]
                    admin = login(server.url, ADMIN)
                asyncio.run(
                    drive(server.url, accounts, admin, ledger, opts, round_no, server, kill_after)
                )
            finally:
                server.kill()  # already dead, unless the bench itself failed or was stopped
            acked = sum(t.acked for t in ledger.turns)
            console.print(
                f"{db} round {round_no + 1}/{opts.rounds}: ready in {server.ready_s:.1f} s, "
                f"killed {kill_after:.1f} s later; {acked} turns acknowledged so far"
            )
        server = Server(env, log, opts)
        starts.append(server.ready_s)
        try:
            snap, lag = asyncio.run(
                catch_up(settings.resolved_database_url, ledger, opts, time.monotonic())
            )
        finally:
            server.stop()
        findings = check(ledger, snap)
    finally:
        if dbname:
            asyncio.run(pgserver.drop_database(postgres_url, dbname))
    wall = time.monotonic() - began
    report = CrashReport(db, opts.rounds, len(ledger.kills), findings, lag, wall, _errors(log))
    report.starts_s, report.failed = starts, ledger.errors
    return report


def _shared(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    return folder


def _errors(log: Path) -> list[str]:
    """The server's error lines (each kind once): not violations by themselves, but
    what to read first when there are some."""
    seen: dict[str, None] = {}
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for n, line in enumerate(lines):
        if any(line.startswith(m) for m in ERROR_MARKERS):
            tail = next((x for x in lines[n + 1 : n + 60] if x and not x.startswith(" ")), line)
            seen.setdefault(f"{line[:120]} / {tail[:160]}", None)
    return list(seen)


def run_bench_crash(
    rounds: int = 20,
    dbs: tuple[str, ...] = ("sqlite", "postgres"),
    concurrency: int = 6,
    seed: int = 0,
    postgres_url: str = "",
    catch_up_s: float = 120.0,
) -> list[CrashReport]:
    """The CLI: every database asked for, a table, and the problems found."""
    console = Console()
    opts = CrashOptions(rounds=rounds, concurrency=concurrency, seed=seed, catch_up_s=catch_up_s)
    reports: list[CrashReport] = []
    workdir = Path(tempfile.mkdtemp(prefix="mongars-crash-"))
    with contextlib.ExitStack() as stack:
        for db in dbs:
            url = postgres_url
            if db == "postgres" and not url:
                url = stack.enter_context(pgserver.temporary("mongars-crash-pg-"))
            reports.append(run_crash(db, opts, workdir, url))
    print_reports(console, reports)
    if all(r.ok and not r.server_errors and not r.failed for r in reports):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        console.print(f"server logs kept in {workdir}")
    return reports


def print_reports(console: Console, reports: list[CrashReport]) -> None:
    table = Table(title="mongars bench crash: kill -9 under load, then what is stored")
    table.add_column("")
    for r in reports:
        table.add_column(r.db, justify="right")
    rows: list[tuple[str, Callable[[CrashReport], object]]] = [
        ("rounds / kills (SIGKILL)", lambda r: f"{r.rounds} / {r.kills}"),
        ("server start to /ready, median s", lambda r: f"{statistics.median(r.starts_s):.1f}"),
        ("turns acknowledged (REST / SSE / WS)", _turns),
        ("turns in flight at a kill / stored", lambda r: _unacked(r, "turns")),
        ("documents acknowledged", lambda r: r.findings.acked["documents"]),
        ("documents in flight at a kill / stored", lambda r: _unacked(r, "documents")),
        ("feedback acknowledged", lambda r: r.findings.acked["feedback"]),
        ("job runs acknowledged", lambda r: r.findings.acked["jobs"]),
        ("job runs resumed across a kill", lambda r: r.findings.resumed_runs),
        ("requests failed while the server was up", lambda r: r.failed.total()),
        ("stored rows checked", lambda r: r.findings.checked),
        ("lost", lambda r: r.findings.lost),
        ("duplicated", lambda r: r.findings.duplicated),
        ("half-written", lambda r: r.findings.half_written),
        ("turns without an embedded memory", lambda r: r.findings.unindexed),
        ("job runs left queued or running", lambda r: r.findings.stuck_jobs),
        ("memory lag after the last start, s", _lag),
        ("wall time, s", lambda r: f"{r.wall_s:.0f}"),
    ]
    for label, value in rows:
        table.add_row(label, *(str(value(r)) for r in reports))
    console.print(table)
    for r in reports:
        verdict = "[green]OK[/green]" if r.ok else "[red]VIOLATIONS[/red]"
        console.print(f"{r.db}: {verdict}")
        for problem in r.findings.problems:
            console.print(f"[red]{r.db}[/red] {problem}")
        for what, count in r.failed.most_common(10):
            console.print(f"[yellow]{r.db} failed while up[/yellow] {count} x {what}")
        for line in r.server_errors[:10]:
            console.print(f"[yellow]{r.db} server log[/yellow] {line}")


def _turns(r: CrashReport) -> str:
    a = r.findings.acked
    return f"{a['turns']} ({a['turns rest']} / {a['turns sse']} / {a['turns ws']})"


def _unacked(r: CrashReport, kind: str) -> str:
    return f"{r.findings.unacked[kind]} / {r.findings.unacked[f'{kind} stored']}"


def _lag(r: CrashReport) -> str:
    return f"{r.memory_lag_s:.1f}" if r.memory_lag_s is not None else "not caught up"
