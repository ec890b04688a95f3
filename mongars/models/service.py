"""The models this server runs (one profile, made of the settings), the LoRA adapters
training produced, and provisioning: check each model is there, fetch what can be.

Roles: ``general`` (the chat model), ``embedding`` (MiniLM, used by memory and
documents) and ``captioning`` (BLIP, when MONGARS_CAPTION_MODEL is set).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.adapters.models import AdapterVersion
from mongars.adapters.repository import AdapterRepository
from mongars.auth.models import AuditEntry
from mongars.auth.repository import AuditRepository
from mongars.llm.model_files import CATALOGUE, embedded_model_path
from mongars.media.captioning import CAPTION_MAX_NEW_TOKENS
from mongars.memory.embeddings import MAX_TOKENS as EMBED_MAX_TOKENS
from mongars.memory.embeddings import resolve_backend
from mongars.memory.models import EMBEDDING_DIM
from mongars.models.provision import (
    CHECK_TIMEOUT_S,
    EMBEDDING_PACKAGE,
    Outcome,
    package_installed,
    pip_name,
    provision_captioning,
    provision_embedding,
    provision_general,
)
from mongars.models.schemas import (
    PROFILE,
    ROLES,
    AdapterOut,
    ModelDefinition,
    ModelProfile,
    ModelsOut,
    ProvisionReport,
    ProvisionRequest,
    ProvisionStatus,
)
from mongars.settings import Settings
from mongars.training.repository import TrainingRepository

log = logging.getLogger(__name__)

ADAPTERS_LISTED = 200  # newest first
EMBEDDING_NAME = "all-MiniLM-L6-v2"


def used_roles(settings: Settings) -> list[str]:
    """The roles this server's settings put a model in, in ROLES order."""
    used = {"general"}
    if settings.memory.enabled or settings.research.documents:
        used.add("embedding")
    if settings.caption_model:
        used.add("captioning")
    return [role for role in ROLES if role in used]


def definition(settings: Settings, role: str) -> ModelDefinition:
    if role == "embedding":
        return _embedding(settings)
    if role == "captioning":
        return _captioning(settings)
    return _general(settings)


def _general(settings: Settings) -> ModelDefinition:
    llm = settings.llm
    params: dict[str, Any] = {
        "context_window": llm.context_window,
        "max_tokens": llm.max_tokens,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
    }
    if llm.provider in ("llamacpp", "ollama"):
        params["repeat_penalty"] = llm.repeat_penalty
    if llm.provider != "llamacpp":
        params["base_urls"] = llm.endpoints
        name = llm.model or ("ray" if llm.provider == "ray" else "")
        return ModelDefinition(
            role="general",
            name=name,
            provider=llm.provider,
            parameters=params,
            auto_download=llm.provider == "ollama" and llm.ollama_pull,
            description=_HTTP_DESCRIPTIONS[llm.provider],
        )
    params["threads"] = llm.threads
    if llm.model_path:
        params["path"] = llm.model_path
        return ModelDefinition(
            role="general",
            name=Path(llm.model_path).name,
            provider="llamacpp",
            parameters=params,
            auto_download=False,
            description="a GGUF file named by MONGARS_LLM__MODEL_PATH",
        )
    packaged = CATALOGUE[llm.embedded_model]
    params["path"] = str(embedded_model_path(settings.data_dir, packaged.name))
    params["package"] = pip_name(packaged.package)
    return ModelDefinition(
        role="general",
        name=packaged.name,
        provider="llamacpp",
        parameters=params,
        auto_download=package_installed(packaged.package),
        description=packaged.about,
    )


_HTTP_DESCRIPTIONS = {
    "ollama": "served by Ollama",
    "openai": "served by an OpenAI-compatible server",
    "ray": "served by the monGARS Ray Serve application",
}


def _embedding(settings: Settings) -> ModelDefinition:
    memory = settings.memory
    backend = resolve_backend(memory.embed_backend)
    return ModelDefinition(
        role="embedding",
        name=EMBEDDING_NAME,
        provider="transformers" if backend == "torch" else "onnxruntime",
        parameters={
            "backend": backend,
            "dimensions": EMBEDDING_DIM,
            "max_tokens": EMBED_MAX_TOKENS,
            "threads": memory.embed_threads,
            "precision": memory.embed_precision,
            "onnx_queries": memory.embed_query_onnx,
            "int8_queries": memory.embed_query_int8,
            "package": pip_name(EMBEDDING_PACKAGE),
        },
        auto_download=False,
        description="sentence embeddings for memory and documents (mean pooling, L2 norm)",
    )


def _captioning(settings: Settings) -> ModelDefinition:
    return ModelDefinition(
        role="captioning",
        name=Path(settings.caption_model).name if settings.caption_model else "blip",
        provider="transformers",
        parameters={
            "path": settings.caption_model,
            "max_new_tokens": CAPTION_MAX_NEW_TOKENS,
            "max_bytes": settings.caption_max_bytes,
        },
        auto_download=False,
        description="BLIP: a caption of an image attached to a chat turn",
    )


def _unused_reason(role: str) -> str:
    if role == "embedding":
        return (
            "not used on this server: memory and documents are off "
            "(MONGARS_MEMORY__ENABLED, MONGARS_RESEARCH__DOCUMENTS)"
        )
    return "not used on this server: MONGARS_CAPTION_MODEL is not set"


def _registry_state(version: AdapterVersion | None) -> dict[str, Any]:
    if version is None:
        return {}
    return {"state": version.state, "version": version.id}


class ModelService:
    def __init__(
        self, session: AsyncSession, settings: Settings, loads_adapters: bool = False
    ) -> None:
        self.session = session
        self.settings = settings
        self.loads_adapters = loads_adapters

    async def overview(self) -> ModelsOut:
        models = {role: definition(self.settings, role) for role in used_roles(self.settings)}
        return ModelsOut(
            active_profile=PROFILE,
            available_profiles=[PROFILE],
            profile=ModelProfile(name=PROFILE, models=models),
            adapters=await self.adapters(),
            adapters_loadable=self.loads_adapters,
            adapters_note=(
                "LoRA adapters trained here answer through llama.cpp (embedded or Ray)"
                if self.loads_adapters
                else f"the {self.settings.llm.provider} provider cannot load this server's "
                "LoRA adapters: answers always come from its own model"
            ),
        )

    async def adapters(self) -> list[AdapterOut]:
        runs = await TrainingRepository(self.session).completed_adapters(ADAPTERS_LISTED)
        registered = await AdapterRepository(self.session).by_shas(
            {r.adapter_sha256 for r in runs if r.adapter_sha256}
        )
        return [
            AdapterOut(
                run_id=run.id,
                dataset_id=run.dataset_id,
                objective=run.objective,
                sha256=run.adapter_sha256 or "",
                created_at=run.finished_at or run.created_at,
                perplexity_base=(run.metrics or {}).get("perplexity_base"),
                perplexity_adapter=(run.metrics or {}).get("perplexity_adapter"),
                **_registry_state(registered.get(run.adapter_sha256 or "")),
            )
            for run in runs
        ]

    async def provision(
        self, actor: str, request: ProvisionRequest, address: str | None = None
    ) -> ProvisionReport:
        """Check (and where allowed fetch) each role's model; audited. Provider failures
        are status entries, never errors."""
        used = used_roles(self.settings)
        roles = request.roles or used
        statuses = []
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            for role in roles:
                model = definition(self.settings, role)
                if role in used:
                    outcome = await self._provision(role, request.force, client)
                else:
                    outcome = Outcome("skipped", _unused_reason(role))
                statuses.append(
                    ProvisionStatus(
                        role=role,
                        name=model.name,
                        provider=model.provider,
                        action=outcome.action,
                        detail=outcome.detail,
                    )
                )
        await AuditRepository(self.session).add(
            AuditEntry(
                actor=actor[:64],
                action="models.provision",
                target=",".join(roles)[:128],
                detail=("force; " if request.force else "")
                + "; ".join(f"{s.role}: {s.action} ({s.detail})" for s in statuses),
                address=address,
            )
        )
        return ProvisionReport(statuses=statuses)

    async def _provision(self, role: str, force: bool, client: httpx.AsyncClient) -> Outcome:
        try:
            if role == "embedding":
                return provision_embedding()
            if role == "captioning":
                return provision_captioning(self.settings.caption_model)
            return await provision_general(self.settings, force, client)
        except Exception as exc:  # a bug or a surprise from a provider: a status, not a 500
            log.exception("provisioning the %s model failed", role)
            return Outcome("error", f"unexpected failure: {exc}")
