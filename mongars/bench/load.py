"""`mongars bench load`: many streaming chats and idle sockets against one server.

Per database (SQLite, PostgreSQL) and per step, a fresh `mongars.bench.loadserver`
process (the real app, its model a paced token source: the server's own cost, not
a model's) on 127.0.0.1 with a fresh database. ``sse`` clients each chat in their
own thread over SSE, a new message as soon as an answer ends, for ``duration_s``;
``ws`` WebSockets are held open idle meanwhile (answering the server's heartbeat).
Measured: time to the first token (p50/p95; the baseline is one client alone on
the same server just before), answers and tokens per second, errors by kind, the
server's RSS (itself and its children) before a warm-up (the same load for a
quarter of the time), at the start, the peak and the end (start and end after a
settle period and a garbage collection: a leak shows as growth from start to end),
and every second its CPU, open files, event-loop lag, database pool use and
PostgreSQL's CPU, which say why a step breaks. ``ramp`` repeats with more
chatters to find where it breaks.

The accounts are made with one password hash (argon2 costs ~0.2 s each) and
``--users`` of them share the chatters; the per-user chat limit (30/minute by
default) is raised in the server's environment, or the load would be refused.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from rich.console import Console

from mongars.bench import pgserver
from mongars.bench.common import PASSWORD, free_port, percentile, start_server, stop_server
from mongars.bench.load_clients import IdleSockets, Sample, Tally, chat_once, chatter, sampler
from mongars.bench.load_clients import tree_rss_mib as rss_of
from mongars.bench.load_report import diagnose, print_report
from mongars.settings import Settings

BASELINE_CHATS = 5
NO_LIMIT = "1000000/minute"


@dataclass(frozen=True)
class Options:
    sse: int = 200
    ws: int = 500
    duration_s: float = 120.0
    users: int = 50
    tokens: int = 40
    interval_ms: float = 25.0
    settle_s: float = 5.0
    seed: int = 0
    rss_tolerance_mib: float = 32.0
    slo_ms: float = 1000.0  # p95 time to first token past this: the step broke


@dataclass
class Step:
    db: str
    sse: int
    ws: int
    duration_s: float
    tally: Tally = field(default_factory=Tally)
    ws_errors: Counter[str] = field(default_factory=Counter)
    ws_alive: int = 0
    baseline_ms: list[float] = field(default_factory=list)
    rss_cold: float = 0.0  # after the baseline chats, before the warm-up
    rss_start: float = 0.0  # after the warm-up, settled and collected
    rss_peak: float = 0.0
    rss_end: float = 0.0  # after the load, settled and collected
    elapsed_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    log_tail: str = ""

    @property
    def errors(self) -> Counter[str]:
        return self.tally.errors + self.ws_errors

    @property
    def growth_mib(self) -> float:
        return self.rss_end - self.rss_start

    def p(self, q: float) -> float:
        return percentile(self.tally.ttft_ms, q)


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (the server inherits it); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def make_users(settings: Settings, names: list[str]) -> None:
    """Migrate, then add the accounts with one shared hash of PASSWORD."""
    from mongars.auth.repository import UserRepository
    from mongars.auth.security import hash_password
    from mongars.db import migrate
    from mongars.db.engine import create_engine, create_session_factory, unit_of_work

    migrate.upgrade(settings.resolved_database_url)
    digest = hash_password(PASSWORD)

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url)
        async with unit_of_work(create_session_factory(engine)) as session:
            users = UserRepository(session)
            for name in names:
                await users.add(name, digest, is_admin=False)
        await engine.dispose()

    asyncio.run(go())


def server_env(data_dir: Path, database_url: str, opts: Options) -> dict[str, str]:
    return {
        **os.environ,
        "MONGARS_DATA_DIR": str(data_dir),
        "MONGARS_DATABASE_URL": database_url,
        "MONGARS_LOG_LEVEL": "warning",
        "MONGARS_LLM__MAX_TOKENS": str(opts.tokens),
        # Recall and documents load the embedding model: their cost is measured by
        # `mongars bench memory-scale` and `docs`; here, the server's own.
        "MONGARS_MEMORY__ENABLED": "false",
        "MONGARS_RESEARCH__DOCUMENTS": "false",
        # Raised for the bench: each chatter asks ~60 times a minute (the default per-user
        # limit is 30), and every account logs in from 127.0.0.1.
        "MONGARS_RATE_LIMITS__CHAT": NO_LIMIT,
        "MONGARS_AUTH__LOGIN_LIMIT_PER_ADDRESS": NO_LIMIT,
    }


async def _login(http: httpx.AsyncClient, names: list[str]) -> dict[str, str]:
    gate = asyncio.Semaphore(4)

    async def one(name: str) -> tuple[str, str]:
        async with gate:
            r = await http.post("/token", data={"username": name, "password": PASSWORD})
            r.raise_for_status()
            return name, str(r.json()["access_token"])

    return dict(await asyncio.gather(*(one(n) for n in names)))


async def _collected_rss(http: httpx.AsyncClient, server: psutil.Process, settle_s: float) -> float:
    await asyncio.sleep(settle_s)
    (await http.post("/_bench/gc")).raise_for_status()
    await asyncio.sleep(0.5)
    return rss_of(server)


async def _load(
    http: httpx.AsyncClient,
    base: str,
    tokens: dict[str, str],
    sse: int,
    ws: int,
    duration_s: float,
    tally: Tally,
    rng: random.Random,
) -> tuple[IdleSockets, float]:
    """``ws`` idle sockets open while ``sse`` chatters chat for ``duration_s``; the
    sockets (still open) and the seconds from the first chat to the last answer."""
    users = [name for name in tokens if name != "idle"]
    idle = IdleSockets(base)
    await idle.open(http, tokens["idle"], ws)
    started = time.monotonic()
    deadline = started + duration_s

    async def one(i: int) -> None:
        await asyncio.sleep(rng.uniform(0, min(2.0, duration_s / 10)))
        await chatter(http, tokens[users[i % len(users)]], f"load-{i}", deadline, tally)

    await asyncio.gather(*(one(i) for i in range(sse)))
    return idle, time.monotonic() - started


async def drive(
    step: Step, base: str, server: psutil.Process, pg: psutil.Process | None, opts: Options
) -> None:
    """Baseline, a warm-up, then the load; the memory before and after it."""
    rng = random.Random(opts.seed)
    users = [f"load{i}" for i in range(min(opts.users, step.sse))]
    limits = httpx.Limits(max_connections=step.sse + 64, max_keepalive_connections=step.sse + 64)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        tokens = await _login(http, [*users, "idle"])
        alone = Tally()
        auth = {"Authorization": f"Bearer {tokens[users[0]]}"}
        for n in range(BASELINE_CHATS):
            await chat_once(http, auth, {"message": f"hello {n}", "session_id": "base"}, alone)
        step.baseline_ms = alone.ttft_ms
        step.tally.errors.update(alone.errors)
        step.rss_cold = await _collected_rss(http, server, 0.5)
        # Warm-up, the same load for a quarter of the time (at most 10 s): what the first
        # requests allocate once (lazy imports, statement caches) and the allocator's
        # high-water mark at this concurrency are not growth; a leak grows again after.
        warm = Tally()
        warm_s = min(10.0, max(2.0, step.duration_s / 4))
        idle, _ = await _load(http, base, tokens, step.sse, step.ws, warm_s, warm, rng)
        await idle.close()
        step.tally.errors.update(warm.errors + idle.errors)
        step.rss_start = await _collected_rss(http, server, opts.settle_s)
        samples: list[Sample] = []
        stop = asyncio.Event()
        watch = asyncio.create_task(sampler(http, server, pg, samples, stop))
        idle, step.elapsed_s = await _load(
            http, base, tokens, step.sse, step.ws, step.duration_s, step.tally, rng
        )
        step.ws_alive = idle.alive()
        await idle.close()
        step.ws_errors = idle.errors
        stop.set()
        await watch
        step.samples = samples
        step.rss_peak = max([s.rss_mib for s in samples] + [step.rss_start])
        step.rss_end = await _collected_rss(http, server, opts.settle_s)


def run_step(db: str, sse: int, duration_s: float, opts: Options, pg: object | None) -> Step:
    """One fresh server and database, loaded once."""
    step = Step(db, sse, opts.ws, duration_s)
    with tempfile.TemporaryDirectory(prefix=f"mongars-load-{db}-") as tmp:
        data_dir = Path(tmp) / "data"
        url = ""
        if pg is not None:
            server_url = pg.get_uri(driver="asyncpg")  # type: ignore[attr-defined]
            name = f"load_{sse}_{int(time.time() * 1000) % 10**9}"
            url = asyncio.run(pgserver.create_database(server_url, name))
        settings = Settings(data_dir=data_dir, database_url=url)
        make_users(settings, [*(f"load{i}" for i in range(opts.users)), "idle"])
        port = free_port()
        log = Path(tmp) / "server.log"
        argv = ["-m", "mongars.bench.loadserver", str(port), "paced", str(opts.interval_ms / 1000)]
        proc = start_server(argv, server_env(data_dir, url, opts), port, log=log)
        try:
            pg_proc = psutil.Process(pg.get_pid()) if pg is not None else None  # type: ignore[attr-defined]
            asyncio.run(
                drive(step, f"http://127.0.0.1:{port}", psutil.Process(proc.pid), pg_proc, opts)
            )
        finally:
            stop_server(proc)
            step.log_tail = log.read_text(errors="replace")[-2000:]
    return step


@contextmanager
def database(db: str) -> Iterator[object | None]:
    if db == "sqlite":
        yield None
        return
    server = pgserver.start("mongars-load-pg-")
    try:
        yield server
    finally:
        pgserver.cleanup(server)


def run_bench_load(
    opts: Options,
    dbs: tuple[str, ...] = ("sqlite", "postgres"),
    ramp: tuple[int, ...] = (),
    ramp_duration_s: float = 30.0,
    say: Callable[[str], None] | None = None,
) -> list[Step]:
    """Every step on every database; the target load (``opts.sse``) for the full
    duration, the ramp's other concurrencies for ``ramp_duration_s``."""
    console = Console()
    say = say or console.print
    fd_limit = raise_fd_limit()
    plan = sorted({opts.sse, *ramp})
    steps: list[Step] = []
    for db in dbs:
        with database(db) as pg:
            for sse in plan:
                duration = opts.duration_s if sse == opts.sse else ramp_duration_s
                say(
                    f"{db}: {sse} SSE chatters + {opts.ws} idle WebSockets for {duration:.0f} s ..."
                )
                steps.append(run_step(db, sse, duration, opts, pg))
    print_report(console, steps, opts, fd_limit)
    for line in diagnose(steps, opts, fd_limit):
        console.print(line)
    return steps


def target_failures(steps: list[Step], opts: Options) -> list[str]:
    """Why the target load failed (empty: it passed): errors, or memory kept after it."""
    failures = []
    for s in steps:
        if s.sse != opts.sse:
            continue
        if s.errors:
            failures.append(f"{s.db}: {sum(s.errors.values())} errors {dict(s.errors)}")
        if s.growth_mib > opts.rss_tolerance_mib:
            failures.append(
                f"{s.db}: server RSS grew {s.growth_mib:.0f} MiB after the load "
                f"(tolerance {opts.rss_tolerance_mib:.0f})"
            )
    return failures
