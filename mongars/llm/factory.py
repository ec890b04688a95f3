"""Choose the LLM provider from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mongars.llm.base import LLMProvider
from mongars.llm.resilience import Policy
from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars.observability.metrics import Metrics


def create_provider(settings: Settings, metrics: Metrics | None = None) -> LLMProvider:
    llm = settings.llm
    policy = Policy.from_settings(llm)  # the HTTP providers' retries and breakers
    if llm.provider == "ollama":
        from mongars.llm.ollama import OllamaProvider

        return OllamaProvider(
            llm.endpoints,
            llm.model,
            llm.context_window,
            llm.timeout_s,
            policy=policy,
            metrics=metrics,
        )
    if llm.provider == "openai":
        from mongars.llm.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            llm.endpoints,
            llm.model,
            llm.context_window,
            llm.timeout_s,
            llm.api_key.get_secret_value(),
            policy=policy,
            metrics=metrics,
        )
    if llm.provider == "ray":
        from mongars.llm.ray import RayProvider

        return RayProvider(
            llm.endpoints, llm.context_window, llm.timeout_s, policy=policy, metrics=metrics
        )
    from mongars.llm.llamacpp import LlamaCppProvider

    return LlamaCppProvider(
        model_path=llm.model_path,
        data_dir=settings.data_dir,
        context_window=llm.context_window,
        threads=llm.threads,
        embedded_model=llm.embedded_model,
        stream_interval_s=llm.stream_interval_ms / 1000,
    )
