"""/api/v1/models: list and provision the models this server runs (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mongars.deps import AdminUser, RuntimeDep, SessionDep
from mongars.models.schemas import ModelsOut, ProvisionReport, ProvisionRequest
from mongars.models.service import ModelService

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", response_model=ModelsOut)
async def list_models(admin: AdminUser, runtime: RuntimeDep, session: SessionDep) -> ModelsOut:
    """The active profile's model per role (general, embedding, captioning) and the
    LoRA adapters completed training runs produced (candidates, newest first)."""
    return await ModelService(session, runtime.settings, runtime.llm.loads_adapters).overview()


@router.post("/provision", response_model=ProvisionReport)
async def provision_models(
    body: ProvisionRequest,
    admin: AdminUser,
    runtime: RuntimeDep,
    session: SessionDep,
    request: Request,
) -> ProvisionReport:
    """Check each role's model and fetch what can be fetched; one status per role with
    an action (exists, installed, updated, skipped, unavailable, error) and the reason."""
    address = request.client.host if request.client else None
    return await ModelService(session, runtime.settings).provision(admin.username, body, address)
