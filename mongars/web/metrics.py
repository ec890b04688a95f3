"""A small JSON summary of the server's OpenTelemetry metrics for the console's charts.

Counters are cumulative since start; the console polls this and plots rates
from the differences between two polls.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from mongars.runtime import Runtime

# The console's own polling would otherwise dominate a quiet server's request rate.
IGNORED_ROUTES = {"/admin/metrics.json"}


def metrics_summary(runtime: Runtime) -> dict[str, Any]:
    sums: dict[str, float] = defaultdict(float)
    turns: dict[str, float] = defaultdict(float)
    for family in runtime.metrics.registry.collect():
        for sample in family.samples:
            route = sample.labels.get("http_route")
            if route in IGNORED_ROUTES:
                continue
            if sample.name == "chat_turns_total":
                turns[sample.labels.get("status", "unknown")] += sample.value
            elif not sample.name.endswith(("_bucket", "_created")):
                sums[sample.name] += sample.value
    llm = runtime.llm
    return {
        "time": time.time(),
        "model": {
            "provider": llm.name,
            "model": llm.model_id,
            "context_window": llm.context_window,
            "max_tokens": runtime.settings.llm.max_tokens,
            "prompt_format": llm.prompt_format,
            "prompt_format_note": llm.prompt_format_note,
        },
        "requests": sums["http_server_requests_total"],
        "latency_seconds_sum": sums["http_server_duration_seconds_sum"],
        "latency_count": sums["http_server_duration_seconds_count"],
        "prompt_tokens": sums["llm_prompt_tokens_total"],
        "completion_tokens": sums["llm_completion_tokens_total"],
        "tokens_per_second_sum": sums["llm_generation_tokens_per_second_sum"],
        "tokens_per_second_count": sums["llm_generation_tokens_per_second_count"],
        "ttft_seconds_sum": sums["llm_time_to_first_token_seconds_sum"],
        "ttft_count": sums["llm_time_to_first_token_seconds_count"],
        "turns": dict(turns),
        # HTTP providers: each endpoint and its circuit breaker (closed, half-open, open).
        "endpoints": llm.endpoint_states(),
    }
