"""The rule table on figures made by hand: CPU pressure pauses the running background
jobs and resumes what it paused; consolidation and training only with pending work."""

from __future__ import annotations

from mongars.evolution.diagnostics import Diagnostics, percentile
from mongars.evolution.rules import evaluate
from mongars.settings import EvolutionSettings

CFG = EvolutionSettings()


def figures(**kw: object) -> Diagnostics:
    base = Diagnostics(at="2026-01-01T00:00:00+00:00", window_h=24, cpu_limit=80.0)
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def actions(d: Diagnostics) -> list[tuple[str, str, list[str]]]:
    return [(p.rule, p.action, p.targets) for p in evaluate(d, CFG)]


def test_quiet_server_decides_nothing() -> None:
    assert actions(figures(cpu_pressure=3.0, memory_on=False)) == []


def test_cpu_pressure_pauses_running_background_jobs_then_resumes() -> None:
    busy = figures(cpu_pressure=95.0, background_running=["memory.index"])
    assert actions(busy) == [("cpu_pressure", "pause_background", ["memory.index"])]
    calm = figures(cpu_pressure=10.0, engine_paused=["memory.index"])
    assert actions(calm) == [("cpu_pressure", "resume_background", ["memory.index"])]


def test_consolidation_only_with_pending_work_and_calm_cpu() -> None:
    due = figures(memory_on=True, consolidation_due=True, memory_pending=True)
    assert actions(due) == [
        ("consolidation_pending", "schedule_consolidation", ["memory.index", "memory.consolidate"])
    ]
    assert actions(figures(memory_on=True, consolidation_due=False, memory_pending=False)) == []
    running = figures(memory_on=True, consolidation_due=True, active_jobs=["memory.consolidate"])
    assert actions(running) == []


def test_training_waits_for_feedback_and_a_free_trainer() -> None:
    assert actions(figures(new_feedback=CFG.train_min_feedback - 1)) == []
    ready = figures(new_feedback=CFG.train_min_feedback)
    assert actions(ready) == [("training_ready", "schedule_training", ["training.curate"])]
    assert actions(figures(new_feedback=99, active_jobs=["training.train"])) == []


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([5.0], 50) == 5.0
