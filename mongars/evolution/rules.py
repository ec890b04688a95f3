"""The rule table: each rule reads a few figures of the diagnostics and, when its
condition holds, proposes one safe action with the figures it read. Rules are pure
(no I/O): the engine dedupes, executes and records what they propose.

- adapter_regression -> rollback_adapter: the active adapter's thumbs-down rate is
  worse than its predecessor's (p <= rollback_p_value, >= rollback_min_turns each side).
- energy_budget -> refuse_training: enough new feedback to train, but background jobs
  spent >= energy_budget_wh_per_day over 24 h.
- training_ready -> schedule_training: >= train_min_feedback new consented feedback,
  no training job active, energy under budget.
- consolidation_pending -> schedule_consolidation: memory on, indexing pending or a
  consolidation pass due, no memory job active, CPU under the limit.
- cpu_pressure -> pause_background: CPU pressure over the limit (pauses the idle-only
  jobs running now); -> resume_background once it is back under and jobs this engine
  paused are still paused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mongars.adapters.stats import worse_p_value
from mongars.evolution.diagnostics import Diagnostics
from mongars.settings import EvolutionSettings

# Actions that change what users get: they wait for an admin unless a setting allows.
NEEDS_APPROVAL = {"rollback_adapter"}


@dataclass(frozen=True)
class Proposal:
    rule: str
    action: str
    inputs: dict[str, Any]
    reason: str
    # Decided by the rule itself (refusals); None: the engine executes the action.
    status: str | None = None
    # What the action works on (job names...), beside the figures.
    targets: list[str] = field(default_factory=list)


Rule = Callable[[Diagnostics, EvolutionSettings], Proposal | None]


def _version(d: Diagnostics, version: int | None) -> dict[str, Any] | None:
    return next((v for v in d.adapters if v["version"] == version), None)


def adapter_regression(d: Diagnostics, cfg: EvolutionSettings) -> Proposal | None:
    """Significantly more thumbs down on the active adapter than on what it replaced:
    a one-sided two-proportion test with enough turns on both sides (never one bad
    answer)."""
    if d.active_adapter is None:
        return None
    active, previous = _version(d, d.active_adapter), _version(d, d.predecessor)
    if active is None or previous is None:
        return None
    if min(active["turns"], previous["turns"]) < cfg.rollback_min_turns:
        return None
    p = worse_p_value(
        active["thumbs_down"], active["turns"], previous["thumbs_down"], previous["turns"]
    )
    if p > cfg.rollback_p_value:
        return None
    inputs = {
        "active": {**active},
        "predecessor": {**previous},
        "p_value": round(p, 6),
        "rollback_p_value": cfg.rollback_p_value,
        "rollback_min_turns": cfg.rollback_min_turns,
        "window_h": d.window_h,
    }
    before = "the base model" if d.predecessor is None else f"version {d.predecessor}"
    reason = (
        f"adapter version {d.active_adapter}: {active['thumbs_down']}/{active['turns']} thumbs "
        f"down vs {previous['thumbs_down']}/{previous['turns']} for {before} (p = {p:.2g})"
    )
    return Proposal("adapter_regression", "rollback_adapter", inputs, reason)


def _training_inputs(d: Diagnostics, cfg: EvolutionSettings) -> dict[str, Any]:
    return {
        "new_feedback": d.new_feedback,
        "train_min_feedback": cfg.train_min_feedback,
        "energy_wh_24h": d.energy_wh_24h,
        "energy_budget_wh_per_day": cfg.energy_budget_wh_per_day,
        "active_jobs": d.active_jobs,
    }


def energy_budget(d: Diagnostics, cfg: EvolutionSettings) -> Proposal | None:
    if d.new_feedback < cfg.train_min_feedback or d.energy_wh_24h < cfg.energy_budget_wh_per_day:
        return None
    reason = (
        f"{d.new_feedback} new feedback would start a training, but background jobs spent "
        f"{d.energy_wh_24h:.2f} Wh in 24 h (budget {cfg.energy_budget_wh_per_day:.2f} Wh)"
    )
    return Proposal(
        "energy_budget", "refuse_training", _training_inputs(d, cfg), reason, status="refused"
    )


def training_ready(d: Diagnostics, cfg: EvolutionSettings) -> Proposal | None:
    if d.new_feedback < cfg.train_min_feedback or d.energy_wh_24h >= cfg.energy_budget_wh_per_day:
        return None
    if any(n.startswith("training.") for n in d.active_jobs):
        return None
    reason = f"{d.new_feedback} new consented feedback (>= {cfg.train_min_feedback})"
    inputs = _training_inputs(d, cfg)
    return Proposal(
        "training_ready", "schedule_training", inputs, reason, None, ["training.curate"]
    )


def consolidation_pending(d: Diagnostics, cfg: EvolutionSettings) -> Proposal | None:
    if not d.memory_on or not (d.memory_pending or d.consolidation_due):
        return None
    if any(n.startswith("memory.") for n in d.active_jobs) or d.cpu_pressure > d.cpu_limit:
        return None
    jobs = (["memory.index"] if d.memory_pending else []) + (
        ["memory.consolidate"] if d.consolidation_due else []
    )
    inputs = {
        "memory_pending": d.memory_pending,
        "consolidation_due": d.consolidation_due,
        "consolidation_last_at": d.consolidation_last_at,
        "cpu_pressure": d.cpu_pressure,
        "cpu_limit": d.cpu_limit,
    }
    reason = "pending memory work: " + ", ".join(jobs)
    return Proposal("consolidation_pending", "schedule_consolidation", inputs, reason, None, jobs)


def cpu_pressure(d: Diagnostics, cfg: EvolutionSettings) -> Proposal | None:
    inputs = {
        "cpu_pressure": d.cpu_pressure,
        "cpu_method": d.cpu_method,
        "cpu_limit": d.cpu_limit,
        "background_running": d.background_running,
        "engine_paused": d.engine_paused,
    }
    if d.cpu_pressure > d.cpu_limit:
        reason = f"CPU pressure {d.cpu_pressure:.2f} ({d.cpu_method}) > {d.cpu_limit:.2f}"
        return Proposal(
            "cpu_pressure", "pause_background", inputs, reason, None, d.background_running
        )
    if d.engine_paused:
        reason = f"CPU pressure {d.cpu_pressure:.2f} ({d.cpu_method}) <= {d.cpu_limit:.2f}"
        return Proposal("cpu_pressure", "resume_background", inputs, reason, None, d.engine_paused)
    return None


RULES: list[Rule] = [
    adapter_regression,
    energy_budget,
    training_ready,
    consolidation_pending,
    cpu_pressure,
]


def evaluate(d: Diagnostics, cfg: EvolutionSettings) -> list[Proposal]:
    return [p for rule in RULES if (p := rule(d, cfg)) is not None]
