"""`mongars bench memory-scale`: search latency and ingest throughput at 100,000 memories.

One user holds ``memories`` synthetic chat memories (threads of 40 turns over
three years) among ``others`` users with ``per_other`` memories each, stored
through MemoryService on SQLite and on PostgreSQL (a temporary pgvector server
with shared_buffers large enough for the HNSW index, see docs/memory.md).

Embeddings: the sentence pools behind the synthetic text are embedded for real
and each memory's vector is composed from its two sentences (synthetic.py), so
100,000 memories do not take an hour of CPU; embedding throughput is measured
separately on real memory texts (length-sorted batches, and arrival-order
batches as the baseline), storage throughput on the load itself: in bulk (on
PostgreSQL without the HNSW index, built once afterwards, as one would import),
then for the user's last batches with every index maintained. End to end is
measured last: new real turns of the big user through MemoryService.ingest
(embedding overlapped with storing), wall clock; "embed, then store" computed
from the two rates is the baseline.

Search is measured per query in the same run for: the query embedding alone,
BM25 only, dense only (with its embedding), and monGARS search cold (nothing
cached), with the query's embedding cached (a repeated question after the
memory changed), and with the result cached (nothing changed since).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mongars.bench import pgserver, synthetic
from mongars.bench.common import bench_embedder, create_users, percentile
from mongars.bench.memory import _user_ids
from mongars.db.base import utcnow
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.memory.cache import MemoryCache
from mongars.memory.embeddings import Embedder
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory
from mongars.settings import Settings

BATCH = 1000
TAIL = 5  # the big user's last batches are stored with every index in place
HNSW_DDL = (
    "CREATE INDEX search_memories_embedding_hnsw ON memories "
    "USING hnsw (embedding vector_cosine_ops)"
)
ROWS = (
    "query embedding alone",
    "BM25 only",
    "dense only (+ embedding)",
    "monGARS, cold",
    "monGARS, query embedding cached",
    "monGARS, result cached",
    "monGARS, small user (cold)",
)


@dataclass
class Result:
    bulk_rate: float  # turns/s while bulk loading (PostgreSQL: HNSW built after)
    tail_rate: float  # turns/s of the last batches, every index maintained
    build_s: float  # PostgreSQL: building the HNSW index after the bulk load
    times: dict[str, list[float]]
    load_ms: float
    pipelined_rate: float  # turns/s through MemoryService.ingest: real embedding + storing


class Corpus:
    """Texts, vectors and threads of every user's memories."""

    def __init__(self, embedder: Embedder, memories: int, others: int, per_other: int, pool: int):
        self.lexicon = synthetic.Lexicon(embedder._tokenizer.get_vocab())
        self.user_s, self.asst_s = synthetic.sentence_pools(pool, self.lexicon)
        start = time.perf_counter()
        self.user_v = embedder.embed_sync(self.user_s)
        self.asst_v = embedder.embed_sync(self.asst_s)
        self.pool_s = time.perf_counter() - start
        tok = embedder._tokenizer
        self.user_len = np.array([len(x) for x in tok(self.user_s)["input_ids"]], np.float32)
        self.asst_len = np.array([len(x) for x in tok(self.asst_s)["input_ids"]], np.float32)
        self.sizes = [memories] + [per_other] * others

    def batch(self, owner: int, start: int, count: int) -> tuple[list[NewMemory], np.ndarray]:
        chosen = synthetic.pairs(count, len(self.user_s), seed=owner * 1_000_003 + start)
        vectors = synthetic.composed_vectors(
            chosen, self.user_v, self.asst_v, self.user_len, self.asst_len
        )
        total, now = self.sizes[owner], utcnow()
        items = [
            NewMemory(
                synthetic.memory_text(self.user_s[u], self.asst_s[a]),
                now - timedelta(days=3 * 365 * (total - start - n) / total),
                kind="turn",
                thread_id=f"u{owner}-t{(start + n) // 40}",
            )
            for n, (u, a) in enumerate(chosen)
        ]
        return items, vectors


def embedding_throughput(embedder: Embedder, corpus: Corpus, sample: int) -> tuple[float, float]:
    """(turns/s with length-sorted batches, turns/s with arrival-order batches)."""
    items, _ = corpus.batch(0, 0, sample)
    texts = [i.text for i in items]
    embedder.embed_sync(texts[:64])  # warm-up
    start = time.perf_counter()
    embedder.embed_sync(texts)
    sorted_s = time.perf_counter() - start
    start = time.perf_counter()
    for n in range(0, len(texts), embedder.batch_size):  # each call sorts only its own batch
        embedder.embed_sync(texts[n : n + embedder.batch_size])
    return sample / sorted_s, sample / (time.perf_counter() - start)


async def _ingest(
    memory: MemoryService,
    users: list[int],
    corpus: Corpus,
    between: Callable[[], Awaitable[float]],
) -> tuple[float, float, float]:
    """Store everything, the big user's batches interleaved with the others'; call
    ``between`` before the last TAIL batches. (bulk turns/s, last batches' turns/s,
    seconds spent in ``between``)."""
    rates = [[0, 0.0], [0, 0.0]]
    rounds = max(1, corpus.sizes[0] // BATCH)
    between_s = 0.0
    for r in range(rounds):
        if r == max(0, rounds - TAIL):
            between_s = await between()
        jobs = [(0, r * BATCH, min(BATCH, corpus.sizes[0] - r * BATCH))]
        others = range(1 + r * (len(users) - 1) // rounds, 1 + (r + 1) * (len(users) - 1) // rounds)
        jobs += [(o, 0, corpus.sizes[o]) for o in others]
        phase = rates[r >= rounds - TAIL]
        for owner, start, count in jobs:
            items, vectors = corpus.batch(owner, start, count)
            t = time.perf_counter()
            await memory.add(users[owner], items, vectors=vectors)
            phase[1] += time.perf_counter() - t
            phase[0] += count
    bulk, tail = (n / s if s else 0.0 for n, s in rates)
    return bulk, tail, between_s


async def _pipelined(memory: MemoryService, user: int, corpus: Corpus, sample: int) -> float:
    """End to end, measured: ``sample`` new turns of the big user (texts not seen
    before) embedded for real and stored, every index maintained, through
    MemoryService.ingest (embedding of the next batch overlaps storing this one);
    turns/s of the wall clock."""
    items, _ = corpus.batch(0, corpus.sizes[0], sample)
    start = time.perf_counter()
    ids = await memory.ingest(user, items)
    elapsed = time.perf_counter() - start
    assert len(ids) == sample
    return sample / elapsed


async def _hnsw(engine: AsyncEngine, build: bool) -> float:
    """PostgreSQL bulk load: drop the HNSW index before, build it (as migration 0005
    defines it) after; seconds taken."""
    start = time.perf_counter()
    async with engine.begin() as conn:
        if build:
            await conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
            await conn.execute(text(HNSW_DDL))
            await conn.execute(text("ANALYZE memories"))
        else:
            await conn.execute(text("DROP INDEX IF EXISTS search_memories_embedding_hnsw"))
    return time.perf_counter() - start


async def _timed(fn: Callable[[], Awaitable[object]], cache: MemoryCache | None = None) -> float:
    """Milliseconds of one call, alone: the cache's background writes of the call
    before (a search stores its query vector and result after answering) are
    waited for first, so they do not land on the next measurement."""
    if cache is not None:
        await cache.flush()
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000


async def _measure(
    memory: MemoryService, users: list[int], queries: list[str]
) -> tuple[dict[str, list[float]], float]:
    big, small = users[0], users[1]
    cache = memory.cache
    assert cache is not None
    load_ms = await _timed(lambda: memory.search(big, "warm up the index", k=10))
    await memory.search(small, "warm up", k=10)
    times: dict[str, list[float]] = {row: [] for row in ROWS}

    async def text_only(q: str) -> None:
        async with unit_of_work(memory.sessions) as session:
            await MemoryRepository(session).text_search(big, q, memory.candidates)

    async def dense_only(q: str) -> None:
        vector = (await memory.embedder.embed([q]))[0]
        async with unit_of_work(memory.sessions) as session:
            await memory.recall.dense(MemoryRepository(session), big, vector, memory.candidates)

    for q in queries:
        search = partial(memory.search, big, q, k=10)
        times[ROWS[0]].append(await _timed(partial(memory.embedder.embed, [q]), cache))
        times[ROWS[1]].append(await _timed(partial(text_only, q), cache))
        times[ROWS[2]].append(await _timed(partial(dense_only, q), cache))
        times[ROWS[3]].append(await _timed(search, cache))
        await cache.invalidate_user(big)  # the memory changed: results recomputed
        times[ROWS[4]].append(await _timed(search, cache))
        times[ROWS[5]].append(await _timed(search, cache))
        # another user, and a query text whose embedding is not cached yet
        times[ROWS[6]].append(await _timed(partial(memory.search, small, f"{q} ", k=10), cache))
    return times, load_ms


async def _backend(
    url: str, data: Path, embedder: Embedder, corpus: Corpus, queries: list[str], sample: int
) -> Result:
    engine = create_engine(url)
    try:
        users = await _user_ids(url, [f"scale-{n}" for n in range(len(corpus.sizes))])
        cache = MemoryCache(disk=data / "cache" / "memory.sqlite3")
        memory = MemoryService(create_session_factory(engine), embedder, cache=cache)
        postgres = engine.dialect.name == "postgresql"

        async def between() -> float:
            return await _hnsw(engine, build=True) if postgres else 0.0

        if postgres:
            await _hnsw(engine, build=False)
        bulk, tail, build_s = await _ingest(memory, users, corpus, between)
        times, load_ms = await _measure(memory, users, queries)
        pipelined = await _pipelined(memory, users[0], corpus, sample)
        await cache.close()
        return Result(bulk, tail, build_s, times, load_ms, pipelined)
    finally:
        await engine.dispose()


PG_SHARED_BUFFERS = "1GB"  # holds the HNSW index of 200,000 memories (~400 MB)


def _postgres() -> tuple[str, Callable[[], None]]:
    """A temporary PostgreSQL server, configured as one would for this many vectors:
    shared_buffers large enough for the HNSW index (pgvector's advice; the default
    128 MB makes each search read index pages from the OS cache)."""
    server = pgserver.start("mongars-scale-pg-")
    url = server.get_uri(driver="asyncpg")
    asyncio.run(pgserver.execute(url, f"ALTER SYSTEM SET shared_buffers = '{PG_SHARED_BUFFERS}'"))
    server.stop()
    server.start()  # shared_buffers takes a restart
    return server.get_uri(driver="asyncpg"), lambda: pgserver.cleanup(server)


def run_bench_memory_scale(
    memories: int = 100_000,
    others: int = 100,
    per_other: int = 1000,
    queries: int = 200,
    pool: int = 6000,
    sample: int = 2000,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
) -> None:
    console = Console()
    embedder = bench_embedder()
    embedder.load()
    console.print(f"embedding {2 * pool} pool sentences ...")
    corpus = Corpus(embedder, memories, others, per_other, pool)
    sorted_rate, arrival_rate = embedding_throughput(embedder, corpus, sample)
    asked = synthetic.queries(queries, corpus.lexicon)
    results: dict[str, Result] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"mongars-scale-{backend}-") as tmp:
            cleanup: Callable[[], None] = lambda: None  # noqa: E731
            url = ""
            if backend == "postgres":
                url, cleanup = _postgres()
            try:
                settings = Settings(data_dir=Path(tmp), database_url=url)
                create_users(settings, [f"scale-{n}" for n in range(len(corpus.sizes))])
                console.print(f"{backend}: storing {sum(corpus.sizes)} memories ...")
                results[backend] = asyncio.run(
                    _backend(
                        settings.resolved_database_url, Path(tmp), embedder, corpus, asked, sample
                    )
                )
            finally:
                cleanup()
    embedder.close()
    console.print(_ingest_table(corpus, sorted_rate, arrival_rate, results))
    console.print(_search_table(memories, per_other, len(asked), results))
    for backend, result in results.items():
        console.print(f"{backend}: first search of the big user {result.load_ms:.0f} ms")
    if "postgres" in results:
        console.print(f"postgres: shared_buffers = {PG_SHARED_BUFFERS}")


def _ingest_table(
    corpus: Corpus, sorted_rate: float, arrival_rate: float, results: dict[str, Result]
) -> Table:
    table = Table(title="ingest throughput (turns/s)")
    table.add_column("stage")
    table.add_column("turns/s", justify="right")
    table.add_column("note")
    table.add_row("embedding, length-sorted batches", f"{sorted_rate:.0f}", "MiniLM, 1 thread")
    table.add_row("embedding, arrival-order batches", f"{arrival_rate:.0f}", "baseline")
    for backend, r in results.items():
        bulk_note = "HNSW built after" if r.build_s else "all indexes maintained"
        table.add_row(f"storing on {backend}, bulk", f"{r.bulk_rate:.0f}", bulk_note)
        if r.build_s:
            table.add_row(f"  {backend}: HNSW build", f"{r.build_s:.0f} s", "after the bulk load")
        table.add_row(f"storing on {backend}, last batches", f"{r.tail_rate:.0f}", "indexes kept")
        both = 1 / (1 / sorted_rate + 1 / r.tail_rate)
        table.add_row(
            f"  {backend}: embed, then store",
            f"{both:.0f}",
            "baseline: computed, one after the other",
        )
        table.add_row(
            f"end to end on {backend}",
            f"{r.pipelined_rate:.0f}",
            "measured: MemoryService.ingest, pipelined (target >= 300)",
        )
    return table


def _search_table(memories: int, per_other: int, n: int, results: dict[str, Result]) -> Table:
    table = Table(title=f"search latency, {n} queries, k=10 (ms; target p95 <= 20)")
    table.add_column(f"user with {memories:,} memories")
    for backend in results:
        table.add_column(f"{backend} p50", justify="right")
        table.add_column(f"{backend} p95", justify="right")
    for row in ROWS:
        label = row.replace("small user", f"user with {per_other:,}")
        cells = []
        for r in results.values():
            cells += [f"{percentile(r.times[row], 50):.1f}", f"{percentile(r.times[row], 95):.1f}"]
        table.add_row(label, *cells)
    return table
