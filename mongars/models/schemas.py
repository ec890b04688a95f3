"""Model-management API shapes: the profile of models this server runs, the LoRA
adapters training produced, and provisioning requests and their outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The roles a model plays on this server, in the order they are listed.
ROLES = ("general", "embedding", "captioning")
PROFILE = "default"  # one profile, made of the settings (MONGARS_LLM__* etc.)

Action = Literal["exists", "installed", "updated", "skipped", "unavailable", "error"]


class ModelDefinition(BaseModel):
    role: str
    name: str = Field(description="the model id (for llamacpp: the packaged model or file)")
    provider: str = Field(description="llamacpp | ollama | openai | ray | transformers")
    parameters: dict[str, Any]
    auto_download: bool = Field(description="provisioning can fetch or assemble its files")
    description: str | None = None


class ModelProfile(BaseModel):
    name: str
    models: dict[str, ModelDefinition]


class AdapterOut(BaseModel):
    """A LoRA adapter from a completed training run, and its state in the adapter
    registry (docs/adapters.md); ``unregistered`` until the registry has it."""

    run_id: str
    dataset_id: str
    objective: str
    sha256: str
    created_at: datetime
    perplexity_base: float | None = None
    perplexity_adapter: float | None = None
    state: Literal[
        "unregistered", "candidate", "approved", "rejected", "active", "retired", "pruned"
    ] = "unregistered"
    version: int | None = Field(default=None, description="its adapter version id")


class ModelsOut(BaseModel):
    active_profile: str
    available_profiles: list[str]
    profile: ModelProfile
    adapters: list[AdapterOut]
    adapters_loadable: bool = Field(
        description="whether the chat provider can answer with this server's adapters"
    )
    adapters_note: str


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(
        None, max_length=16, description="null: every role this server uses"
    )
    force: bool = Field(False, description="prepare or pull again what is already there")

    @field_validator("roles")
    @classmethod
    def _normalise(cls, roles: list[str] | None) -> list[str] | None:
        """Strip, lower-case, drop duplicates (first kept); refuse empty or unknown roles."""
        if roles is None:
            return None
        if not roles:
            raise ValueError("give at least one role, or null for every role")
        names: list[str] = []
        for role in roles:
            name = role.strip().lower()
            if not name:
                raise ValueError("a role must not be empty")
            if name not in ROLES:
                raise ValueError(f"unknown role {role.strip()!r}; known roles: {', '.join(ROLES)}")
            names.append(name)
        return list(dict.fromkeys(names))


class ProvisionStatus(BaseModel):
    role: str
    name: str
    provider: str
    action: Action
    detail: str


class ProvisionReport(BaseModel):
    statuses: list[ProvisionStatus]
