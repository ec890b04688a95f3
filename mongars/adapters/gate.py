"""The approval gate: why a candidate needs a human before it may serve.

A candidate needs one when any check below fails (the seed: "human approval when
confidence metrics drop below configurable thresholds"). With none failing it may go
live by itself, and only if ``MONGARS_TRAINING__AUTO_ACTIVATE`` is true."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mongars.settings import TrainingSettings


def reason(code: str, detail: str, figure: Any = None, limit: Any = None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "figure": figure, "limit": limit}


def gate_reasons(
    metrics: dict[str, Any],
    cfg: TrainingSettings,
    *,
    dataset_confidences: Sequence[float] | None,
    dataset_flagged: bool | None,
) -> list[dict[str, Any]]:
    """Every failed check, with its figure and its limit (empty: it passed them all).

    ``dataset_confidences`` is None when the dataset is gone (retention): that, like a
    missing metric, is a reason too, never a pass by default."""
    out: list[dict[str, Any]] = []
    ratio = metrics.get("perplexity_ratio")
    limit = round(1.0 - cfg.min_perplexity_gain, 4)
    if not isinstance(ratio, int | float):
        out.append(reason("perplexity_missing", "no held-out perplexity was measured"))
    elif ratio > limit:
        out.append(
            reason(
                "perplexity_not_improved",
                f"held-out perplexity is {ratio:.3f} x the base's; at most {limit} x passes",
                round(ratio, 4),
                limit,
            )
        )
    delta = metrics.get("forgetting_delta")
    if not isinstance(delta, int | float):
        out.append(reason("forgetting_missing", "forgetting was not measured"))
    elif delta > cfg.max_forgetting_delta:
        out.append(
            reason(
                "forgetting",
                f"generic-text perplexity rose by {delta:.3f}; at most "
                f"{cfg.max_forgetting_delta} passes",
                round(delta, 4),
                cfg.max_forgetting_delta,
            )
        )
    passed, total = metrics.get("regression_passed"), metrics.get("regression_total")
    if not isinstance(passed, int) or not isinstance(total, int) or total == 0:
        out.append(reason("regression_missing", "the regression prompts did not run"))
    elif passed < total:
        out.append(
            reason(
                "regression_failed",
                f"{total - passed} of {total} regression prompts failed",
                passed,
                total,
            )
        )
    if metrics.get("parity_ok") is not True:
        out.append(
            reason(
                "parity_failed",
                "llama.cpp's perplexity with the exported adapter does not match torch's "
                "(or its logits do not differ from the base)",
                metrics.get("parity_rel_diff"),
                metrics.get("parity_tolerance"),
            )
        )
    if dataset_confidences is None:
        out.append(reason("dataset_missing", "the dataset is gone: its figures cannot be read"))
    else:
        known = [c for c in dataset_confidences if isinstance(c, int | float)]
        mean = sum(known) / len(known) if known else None
        if mean is None or mean < cfg.min_dataset_confidence:
            out.append(
                reason(
                    "low_confidence_data",
                    "the dataset's answers have a mean confidence of "
                    f"{'unknown' if mean is None else f'{mean:.3f}'}; at least "
                    f"{cfg.min_dataset_confidence} passes",
                    None if mean is None else round(mean, 4),
                    cfg.min_dataset_confidence,
                )
            )
    if dataset_flagged:
        out.append(
            reason(
                "forgotten_data",
                "the dataset holds turns their users have since forgotten or deleted",
            )
        )
    return out
