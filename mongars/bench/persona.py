"""`mongars bench persona`: what profile steering and style updates cost per turn.

Two measurements in one process, on a temporary SQLite database:

1. Real turns through the turn pipeline with the embedded model: the persona
   contributor's time (steering before the prompt, the profile update after
   the answer) next to each turn's total latency; then the same turns with the
   persona contributor removed, as the baseline.
2. The contributor alone, many times (no model), for stable medians: steering
   from the cached profile, steering after a cache miss, and the update.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mongars.bench.common import model_and_threads, percentile
from mongars.conversation.plan import StoredTurn, TurnContributor, TurnPlan
from mongars.settings import Settings

MESSAGES = [
    "Capital of France?",
    "Bonjour, pourriez-vous m'expliquer comment fonctionne la photosynthèse ?",
    "hey whats the best way to learn python lol",
    "Could you kindly summarise the causes of the French Revolution? Thank you.",
    "How do I fix a KeyError in os.path.join() when my script reads a JSON config?",
    "Why is the sky blue?",
]


class Timed(TurnContributor):
    """Wraps a contributor and records how long each hook took (ms)."""

    def __init__(self, inner: TurnContributor) -> None:
        self.inner = inner
        self.name = inner.name
        self.before: list[float] = []
        self.after: list[float] = []

    async def contribute(self, plan: TurnPlan) -> None:
        start = time.perf_counter()
        await self.inner.contribute(plan)
        self.before.append((time.perf_counter() - start) * 1000)

    async def after_turn(self, plan: TurnPlan, turn: StoredTurn) -> None:
        start = time.perf_counter()
        await self.inner.after_turn(plan, turn)
        self.after.append((time.perf_counter() - start) * 1000)


def _row(table: Table, name: str, values: list[float]) -> None:
    table.add_row(
        name,
        f"{statistics.median(values):.3f} ms",
        f"{percentile(values, 95):.3f} ms",
        str(len(values)),
    )


async def _bench(settings: Settings, turns: int, iterations: int, console: Console) -> None:
    from mongars.app import build_runtime, dispose_runtime
    from mongars.auth.repository import UserRepository
    from mongars.auth.service import AuthService
    from mongars.conversation.service import ChatService, TurnDone
    from mongars.db.engine import unit_of_work
    from mongars.persona.contributor import PersonaContributor

    runtime = await build_runtime(settings)
    try:
        async with unit_of_work(runtime.sessions) as session:
            await AuthService(session, settings.auth, "unused").create_user(
                "bench", "bench-password-123", is_admin=False
            )
            user = await UserRepository(session).by_username("bench")
        assert user is not None
        persona = next(c for c in runtime.contributors if isinstance(c, PersonaContributor))
        timed = Timed(persona)
        others = [c for c in runtime.contributors if c is not persona]
        chat = ChatService(runtime)

        tokens: dict[bool, list[int]] = {True: [], False: []}

        async def turn(message: str, persona_on: bool) -> float:
            start = time.perf_counter()
            prepared = await chat.prepare(user, message, None)
            async for item in chat.run(prepared):
                if isinstance(item, TurnDone):
                    tokens[persona_on].append(item.result.usage.completion_tokens)
            return (time.perf_counter() - start) * 1000

        await turn("Hello!", True)  # warm-up
        tokens[True].clear()
        with_persona: list[float] = []
        without: list[float] = []
        messages = itertools.cycle(MESSAGES)
        for i in range(turns):
            console.print(f"turn {i + 1}/{turns}")
            message = next(messages)
            runtime.contributors[:] = [timed, *others]
            with_persona.append(await turn(message, True))
            runtime.contributors[:] = others
            without.append(await turn(message, False))
        runtime.contributors[:] = [persona, *others]
        overhead = [b + a for b, a in zip(timed.before, timed.after, strict=True)]

        table = Table(title=f"mongars bench persona: real turns ({runtime.llm.model_id})")
        for column in ("measure", "median", "p95", "n"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        _row(table, "persona steering (before the prompt)", timed.before)
        _row(table, "persona profile update (after the turn)", timed.after)
        _row(table, "persona overhead per turn (target <= 2 ms)", overhead)
        _row(table, "turn total latency, with persona", with_persona)
        _row(table, "turn total latency, baseline without persona", without)
        console.print(table)
        console.print(
            f"tokens per answer (median): {statistics.median(tokens[True]):.0f} with persona, "
            f"{statistics.median(tokens[False]):.0f} without (steering changes the answers, "
            "so whole-turn latencies differ by more than the persona's own time)"
        )
        share = statistics.median(overhead) / statistics.median(with_persona) * 100
        console.print(f"persona overhead: {share:.2f}% of a turn's median latency")

        await _micro(persona, user, iterations, console)
    finally:
        await dispose_runtime(runtime)


async def _micro(persona: object, user: object, iterations: int, console: Console) -> None:
    from mongars.auth.models import User
    from mongars.persona.contributor import PersonaContributor

    assert isinstance(persona, PersonaContributor) and isinstance(user, User)
    cached: list[float] = []
    cold: list[float] = []
    update: list[float] = []
    for i in range(iterations):
        message = MESSAGES[i % len(MESSAGES)]
        plan = TurnPlan(user, "micro", message, [], 256, 0.7, 0.95)
        if i % 10 == 0:
            persona.service.cache.invalidate(user.id)
        start = time.perf_counter()
        await persona.contribute(plan)
        (cold if i % 10 == 0 else cached).append((time.perf_counter() - start) * 1000)
        stored = StoredTurn(i, user.id, "micro", message, "ok", "completed")
        start = time.perf_counter()
        await persona.after_turn(plan, stored)
        update.append((time.perf_counter() - start) * 1000)
    table = Table(title="persona contributor alone (SQLite, no model)")
    for column in ("measure", "median", "p95", "n"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    _row(table, "steering, cached profile", cached)
    _row(table, "steering, cache miss (loads the profile)", cold)
    _row(table, "profile update (measure + write)", update)
    per_turn = [c + u for c, u in zip(cached, update, strict=False)]
    _row(table, "per turn: cached steering + update", per_turn)
    console.print(table)


def run_bench_persona(turns: int = 10, max_tokens: int = 32, iterations: int = 500) -> None:
    console = Console()
    base, model_path, threads = model_and_threads(console)
    with tempfile.TemporaryDirectory(prefix="mongars-bench-") as tmp:
        overrides: dict[str, object] = {
            "data_dir": Path(tmp),
            "database_url": "",
            "llm": {
                "model_path": model_path,
                "temperature": 0.0,
                "max_tokens": max_tokens,
                "threads": threads,
                "context_window": base.llm.context_window,
            },
        }
        if "memory" in Settings.model_fields:  # measure persona alone
            overrides["memory"] = {"enabled": False}
        settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg, arg-type]
        asyncio.run(_bench(settings, turns, iterations, console))
