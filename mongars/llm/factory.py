"""Choose the LLM provider from settings."""

from __future__ import annotations

from mongars.llm.base import LLMProvider
from mongars.settings import Settings


def create_provider(settings: Settings) -> LLMProvider:
    llm = settings.llm
    if llm.provider == "ollama":
        from mongars.llm.ollama import OllamaProvider

        return OllamaProvider(llm.base_url, llm.model, llm.context_window, llm.timeout_s)
    if llm.provider == "openai":
        from mongars.llm.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(
            llm.base_url,
            llm.model,
            llm.context_window,
            llm.timeout_s,
            llm.api_key.get_secret_value(),
        )
    from mongars.llm.llamacpp import LlamaCppProvider

    return LlamaCppProvider(
        model_path=llm.model_path,
        data_dir=settings.data_dir,
        context_window=llm.context_window,
        threads=llm.threads,
        embedded_model=llm.embedded_model,
    )
