"""`mongars bench qa`: end-to-end question answering on LoCoMo through the real chat pipeline.

Each LoCoMo conversation becomes one user's memory (every turn, embedded and
indexed as the server does). Each question (categories 1-4) is then asked
through ChatService, the pipeline every route uses, with the default embedded
model, three ways: (a) memory on, (b) memory off (no recall: the baseline), and
(c) the gold evidence turns placed in the prompt, in the memory block's own
form (the ceiling retrieval could reach). Answers are scored with LoCoMo's
token F1 (qa_score.py). The benchmark's own questions are not remembered:
each is asked as if it were the first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mongars.bench.common import PASSWORD, bench_embedder, percentile
from mongars.bench.locomo import CATEGORIES, Conversation, Question, load
from mongars.bench.memory import ingest
from mongars.bench.qa_score import score
from mongars.settings import Settings

CONDITIONS = ("memory on", "memory off", "evidence in prompt")
# The same for every condition: LoCoMo's answers are short phrases.
INSTRUCTION = "Answer the question in a short phrase, using what you know about these people."


@dataclass
class Outcome:
    f1: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    prompt_tokens: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    latency_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cuts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    leaked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[tuple[str, str, str]] = field(default_factory=list)


def evidence_block(conv: Conversation, q: Question) -> str:
    """The gold turns, in the form the memory contributor gives recalled memories."""
    from mongars.memory.contributor import FOOTER, HEADER, recalled_line

    turns = [t for t in conv.turns if t.dia_id in q.evidence]
    lines = [recalled_line(t.at.date().isoformat(), t.text) for t in turns]
    return "\n".join([HEADER, *lines, FOOTER])


@asynccontextmanager
async def _server(settings: Settings) -> AsyncIterator[Any]:
    """The app's runtime as `mongars serve` builds it (no HTTP in between)."""
    from mongars.app import create_app

    embedder = bench_embedder()
    await embedder.start()
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        yield app.state.runtime
    embedder.close()


async def _users(runtime: Any, names: list[str]) -> list[Any]:
    from mongars.auth.service import AuthService
    from mongars.db.engine import unit_of_work

    users = []
    async with unit_of_work(runtime.sessions) as session:
        auth = AuthService(session, runtime.settings.auth, "unused")
        for name in names:
            users.append(await auth.create_user(name, PASSWORD, is_admin=False))
    return users


async def _ask(runtime: Any, user: Any, q: Question, condition: str, conv: Conversation) -> Any:
    from mongars.conversation.service import ChatService, TurnDone

    chat = ChatService(runtime)
    extra = INSTRUCTION
    skip: frozenset[str] = frozenset()
    if condition != "memory on":
        skip = frozenset({"memory"})
    if condition == "evidence in prompt":
        extra = f"{INSTRUCTION}\n\n{evidence_block(conv, q)}"
    turn = await chat.prepare(user, q.text, None, system_extra=extra, skip=skip)
    async for item in chat.run(turn):
        if isinstance(item, TurnDone):
            await _forget_thread(runtime, user, turn.thread_id)
            return turn, item.result
    raise RuntimeError("the pipeline ended without an answer")


async def _forget_thread(runtime: Any, user: Any, thread_id: str) -> None:
    """Delete the question's thread, as a user would: the benchmark's own questions
    and answers never become memories (the indexer would otherwise pick them up)."""
    from mongars.db.engine import unit_of_work
    from mongars.threads.service import ThreadService

    async with unit_of_work(runtime.sessions) as session:
        await ThreadService(session).delete(user, thread_id)


async def _run(
    dataset: Path,
    limit: int,
    seed: int,
    max_tokens: int,
    memory_tokens: int | None,
    console: Console,
) -> tuple[Outcome, int]:
    from mongars.conversation.hygiene import PATTERN

    convs = load(dataset)
    asked = [(c, q) for c in convs for q in c.questions]
    if limit and limit < len(asked):
        asked = random.Random(seed).sample(asked, limit)
        sampled = {c.sample_id for c, _ in asked}
        convs = [c for c in convs if c.sample_id in sampled]  # ingest only what is asked
    out = Outcome()
    with tempfile.TemporaryDirectory(prefix="mongars-bench-qa-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url="",
            llm={**Settings().llm.model_dump(), "max_tokens": max_tokens},
            memory={**Settings().memory.model_dump(), "context_tokens": memory_tokens},
            persona={"enabled": False},
            research={"documents": False},
        )
        console.print(f"recalled-memory budget: {settings.memory_context_tokens} tokens")
        async with _server(settings) as runtime:
            users = await _users(runtime, [f"locomo-{c.sample_id}" for c in convs])
            console.print(f"ingesting {sum(len(c.turns) for c in convs)} turns into memory ...")
            await ingest(runtime.memory.service, [u.id for u in users], convs, lambda a, b: 0)
            owner = {c.sample_id: u for c, u in zip(convs, users, strict=True)}
            with Progress(console=console) as progress:
                task = progress.add_task("questions x 3 conditions", total=len(asked) * 3)
                for conv, q in asked:
                    for condition in CONDITIONS:
                        start = time.perf_counter()
                        turn, result = await _ask(
                            runtime, owner[conv.sample_id], q, condition, conv
                        )
                        out.latency_s[condition].append(time.perf_counter() - start)
                        f1 = score(q.category, result.response, q.answer)
                        for cat in (0, q.category):
                            out.f1[condition, cat].append(f1)
                        out.prompt_tokens[condition].append(result.usage.prompt_tokens)
                        if turn.plan and "hygiene" in turn.plan.steering:
                            out.cuts[condition] += 1
                        if PATTERN.search(result.response):
                            out.leaked[condition] += 1
                        if condition == "memory on" and len(out.examples) < 5:
                            out.examples.append((q.text, q.answer, result.response))
                        progress.advance(task)
    return out, len(asked)


def report(out: Outcome, asked: int) -> Table:
    table = Table(title=f"mongars bench qa: LoCoMo token F1 (0-1), {asked} questions")
    table.add_column("category")
    for condition in CONDITIONS:
        table.add_column(condition, justify="right")
    table.add_column("gap to ceiling", justify="right")
    for cat in (*CATEGORIES, 0):
        scores = {c: out.f1[c, cat] for c in CONDITIONS}
        if not scores["memory on"]:
            continue
        mean = {c: statistics.fmean(v) for c, v in scores.items()}
        name = f"{CATEGORIES.get(cat, 'overall')} ({len(scores['memory on'])})"
        table.add_row(
            name,
            *(f"{mean[c]:.3f}" for c in CONDITIONS),
            f"{mean['evidence in prompt'] - mean['memory on']:+.3f}",
            end_section=cat == 4,
        )
    return table


def details(out: Outcome) -> Table:
    table = Table(title="prompt, latency and answer hygiene per condition")
    for col in ("condition", "prompt tokens (mean)", "latency p50", "latency p95", "cut", "leaked"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for c in CONDITIONS:
        n = len(out.latency_s[c])
        table.add_row(
            c,
            f"{statistics.fmean(out.prompt_tokens[c]):.0f}",
            f"{percentile(out.latency_s[c], 50):.2f} s",
            f"{percentile(out.latency_s[c], 95):.2f} s",
            f"{out.cuts[c]} / {n} ({out.cuts[c] / n:.1%})",
            f"{out.leaked[c]}",
        )
    return table


def run_bench_qa(
    dataset: Path, limit: int, seed: int, max_tokens: int, memory_tokens: int | None
) -> None:
    console = Console()
    logging.getLogger("mongars").setLevel(logging.ERROR)  # e.g. the setup-token notice
    started = time.perf_counter()
    out, asked = asyncio.run(_run(dataset, limit, seed, max_tokens, memory_tokens, console))
    console.print(report(out, asked))
    console.print(details(out))
    on, off = (statistics.fmean(out.f1[c, 0]) for c in ("memory on", "memory off"))
    leaked = sum(out.leaked.values())
    ratio = on / off if off else float("inf")
    console.print(
        f"memory on / memory off F1: {on:.3f} / {off:.3f} = {ratio:.2f}x "
        f"(target >= 2x: {'met' if on >= 2 * off else 'NOT met'}); stored answers with "
        f"scaffolding: {leaked} (target 0: {'met' if leaked == 0 else 'NOT met'}); "
        f"{time.perf_counter() - started:.0f} s"
    )
    for question, gold, answer in out.examples:
        console.print(f"  Q: {question}\n     gold: {gold}\n     answer: {answer}")
