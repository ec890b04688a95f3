"""The evolution engine's job: diagnose every few minutes (MONGARS_EVOLUTION__SCHEDULE)."""

from __future__ import annotations

from mongars.evolution.service import EvolutionEngine
from mongars.scheduler.jobs import JobContext, JobSpec, StepResult
from mongars.settings import Settings


async def diagnose_step(ctx: JobContext) -> StepResult:
    engine = ctx.runtime.evolution or EvolutionEngine(ctx.runtime)
    made = await engine.diagnose()
    counts: dict[str, int] = {"decisions": len(made)}
    for d in made:
        counts[d.status] = counts.get(d.status, 0) + 1
    progress = "; ".join(f"{d.rule}: {d.action} ({d.status})" for d in made) or "no decision"
    return StepResult(True, counts, progress[:500])


def evolution_jobs(settings: Settings) -> list[JobSpec]:
    if not settings.evolution.enabled:
        return []
    return [
        JobSpec(
            "evolution.diagnose",
            "Diagnostics and the evolution rule table (docs/evolution.md)",
            diagnose_step,
            schedule=settings.evolution.schedule,
        )
    ]
