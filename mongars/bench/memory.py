"""`mongars bench memory`: LoCoMo evidence recall of monGARS memory vs BM25 and dense.

Each LoCoMo conversation becomes one user's memory, stored through the real
MemoryService (one memory per dialog turn, its session date as the time, its
session as the thread). Every question of categories 1-4 is asked as that user
three ways in the same run, interleaved so machine noise hits all alike:

- monGARS: ``MemoryService.search`` (what chat uses),
- BM25 only: ``MemoryRepository.text_search`` alone,
- dense only: the query embedding against the same vectors (in-process index
  on SQLite, pgvector HNSW on PostgreSQL).

Evidence recall is the fraction of a question's evidence turns in the
retrieved set: the top 5, 10 and 20, and what fits a context budget (default
1,500 tokens) when it is filled in rank order the way the chat prompt is,
counted with the embedded model's own tokenizer.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mongars.bench.common import bench_embedder, create_users, percentile
from mongars.bench.locomo import CATEGORIES, Conversation, load
from mongars.db.engine import create_engine, create_session_factory, unit_of_work
from mongars.memory.contributor import FOOTER, HEADER, recalled_line
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService, NewMemory
from mongars.settings import Settings

METHODS = ("monGARS", "BM25 only", "dense only")
DEPTH = 100  # ranked ids fetched per question: enough to fill the budget


class TokenCounter:
    """The embedded GGUF's tokenizer (vocabulary only, no weights loaded)."""

    def __init__(self, model_path: str) -> None:
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=False):  # llama.cpp's context notice
            self.llm = Llama(model_path=model_path, vocab_only=True, verbose=False)

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def line_cost(self, when: str, text: str) -> int:
        """Tokens of one recalled memory as the memory contributor writes it."""
        return self.count(recalled_line(when, text)) + 1  # and its line break


@dataclass
class Scores:
    recall: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tokens: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class Store:
    """The ingested conversations: a user per conversation, memory id -> dia_id."""

    users: list[int]
    dia: dict[int, str]
    cost: dict[int, int]
    embed_s: float
    store_s: float


async def ingest(
    memory: MemoryService,
    users: Sequence[int],
    convs: Sequence[Conversation],
    line_cost: Callable[[str, str], int],
) -> Store:
    store = Store(list(users), {}, {}, 0.0, 0.0)
    for user, conv in zip(users, convs, strict=True):
        texts = [t.text for t in conv.turns]
        start = time.perf_counter()
        vectors = await memory.embedder.embed(texts)
        store.embed_s += time.perf_counter() - start
        start = time.perf_counter()
        items = [
            NewMemory(
                t.text,
                t.at,
                kind="turn",
                thread_id=f"{conv.sample_id}/session-{t.session}",
                meta={"dia_id": t.dia_id, "speaker": t.speaker},
            )
            for t in conv.turns
        ]
        ids = await memory.add(user, items, vectors=vectors)
        store.store_s += time.perf_counter() - start
        for memory_id, turn in zip(ids, conv.turns, strict=True):
            store.dia[memory_id] = turn.dia_id
            store.cost[memory_id] = line_cost(turn.at.date().isoformat(), turn.text)
    return store


def _searchers(
    memory: MemoryService,
) -> dict[str, Callable[[int, str], Awaitable[list[int]]]]:
    async def hybrid(user: int, query: str) -> list[int]:
        return [h.id for h in await memory.search(user, query, k=DEPTH)]

    async def bm25(user: int, query: str) -> list[int]:
        async with unit_of_work(memory.sessions) as session:
            return await MemoryRepository(session).text_search(user, query, DEPTH)

    async def dense(user: int, query: str) -> list[int]:
        vector = (await memory.embedder.embed([query]))[0]
        async with unit_of_work(memory.sessions) as session:
            ranked = await memory.recall.dense(MemoryRepository(session), user, vector, DEPTH)
        return [i for i, _ in ranked]

    return dict(zip(METHODS, (hybrid, bm25, dense), strict=True))


def within_budget(ids: Sequence[int], cost: dict[int, int], budget: int, header: int) -> list[int]:
    """Fill the budget in rank order, skipping a memory that does not fit (as chat does)."""
    used, kept = header, []
    for memory_id in ids:
        if used + cost[memory_id] <= budget:
            kept.append(memory_id)
            used += cost[memory_id]
    return kept


async def evaluate(
    memory: MemoryService, store: Store, convs: Sequence[Conversation], budget: int, header: int
) -> dict[tuple[str, int], Scores]:
    """Scores per (method, category); category 0 is overall."""
    results: dict[tuple[str, int], Scores] = defaultdict(Scores)
    searchers = _searchers(memory)
    for user, conv in zip(store.users, convs, strict=True):
        for q in conv.questions:
            for method, search in searchers.items():
                start = time.perf_counter()
                ids = await search(user, q.text)
                elapsed = (time.perf_counter() - start) * 1000
                kept = within_budget(ids, store.cost, budget, header)
                found = [store.dia[i] for i in ids]
                recalls = {f"@{k}": len(q.evidence & set(found[:k])) for k in (5, 10, 20)}
                recalls["budget"] = len(q.evidence & {store.dia[i] for i in kept})
                for cat in (0, q.category):
                    s = results[method, cat]
                    for name, hit in recalls.items():
                        s.recall[name].append(hit / len(q.evidence))
                    s.tokens.append(header + sum(store.cost[i] for i in kept))
                    s.latency_ms.append(elapsed)
    return results


def report(results: dict[tuple[str, int], Scores], budget: int, counts: dict[int, int]) -> Table:
    table = Table(title=f"mongars bench memory: LoCoMo evidence recall (budget {budget} tokens)")
    for col in ("category", "retrieval", "R@5", "R@10", "R@20", "R@budget", "ctx tokens"):
        table.add_column(col, justify="left" if col in ("category", "retrieval") else "right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for cat in (*CATEGORIES, 0):
        name = f"{CATEGORIES.get(cat, 'overall')} ({counts[cat]})"
        for n, method in enumerate(METHODS):
            s = results[method, cat]
            mean = statistics.fmean
            table.add_row(
                name if n == 0 else "",
                method,
                *(f"{mean(s.recall[k]):.3f}" for k in ("@5", "@10", "@20", "budget")),
                f"{mean(s.tokens):.0f}",
                f"{percentile(s.latency_ms, 50):.1f}",
                f"{percentile(s.latency_ms, 95):.1f}",
                end_section=n == len(METHODS) - 1,
            )
    return table


def verdict(results: dict[tuple[str, int], Scores]) -> list[str]:
    def overall(method: str, key: str) -> float:
        return statistics.fmean(results[method, 0].recall[key])

    r10 = overall("monGARS", "@10")
    ours = overall("monGARS", "budget")
    best = max(overall(m, "budget") for m in METHODS[1:])
    return [
        f"overall recall@10 {r10:.3f} (target >= 0.70): {'met' if r10 >= 0.70 else 'NOT met'}",
        f"recall within budget {ours:.3f} vs best baseline {best:.3f}: "
        f"{ours - best:+.3f} (target >= +0.10): {'met' if ours - best >= 0.10 else 'NOT met'}",
    ]


async def _run(
    url: str, users: list[int], convs: list[Conversation], tok: TokenCounter, budget: int
) -> tuple[Store, dict[tuple[str, int], Scores]]:
    engine = create_engine(url)
    try:
        embedder = bench_embedder()
        await embedder.start()
        memory = MemoryService(create_session_factory(engine), embedder)
        store = await ingest(memory, users, convs, tok.line_cost)
        header = tok.count(f"{HEADER}\n{FOOTER}")
        return store, await evaluate(memory, store, convs, budget, header)
    finally:
        await engine.dispose()


def run_bench_memory(dataset: Path, budget: int = 1500, database_url: str = "") -> None:
    from mongars.bench.common import model_and_threads

    console = Console()
    _, model_path, _ = model_and_threads(console)
    tok = TokenCounter(model_path)
    convs = load(dataset)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-memory-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=database_url)
        names = [f"locomo-{c.sample_id}" for c in convs]
        create_users(settings, names)
        users = asyncio.run(_user_ids(settings.resolved_database_url, names))
        turns = sum(len(c.turns) for c in convs)
        console.print(f"{turns} turns, {len(convs)} users; ingesting ...")
        start = time.perf_counter()
        store, results = asyncio.run(
            _run(settings.resolved_database_url, users, convs, tok, budget)
        )
        total = time.perf_counter() - start
    turns = len(store.dia)
    console.print(
        f"ingest: {turns} turns, embedding {turns / store.embed_s:.0f} turns/s, "
        f"storing {turns / store.store_s:.0f} turns/s; whole run {total:.0f} s"
    )
    counts = {
        cat: sum(1 for c in convs for q in c.questions if q.category == cat) for cat in CATEGORIES
    }
    counts[0] = sum(counts.values())
    console.print(report(results, budget, counts))
    for line in verdict(results):
        console.print(line)


async def _user_ids(url: str, names: Sequence[str]) -> list[int]:
    from sqlalchemy import select

    from mongars.auth.models import User

    engine = create_engine(url)
    async with unit_of_work(create_session_factory(engine)) as session:
        rows = dict((await session.execute(select(User.username, User.id))).tuples().all())
    await engine.dispose()
    return [int(rows[n]) for n in names]
