"""/api/v1/adapters: versions, approvals, the active pointer, canary and rollback
(admin only; docs/adapters.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from mongars.adapters.registry import AdapterRegistry
from mongars.adapters.schemas import (
    AdapterOut,
    AdapterPage,
    CanaryStart,
    ChangeOut,
    Comparison,
    Decision,
    PointerOut,
    Prune,
    Pruned,
    RegisterRun,
)
from mongars.deps import AdminUser, RuntimeDep
from mongars.errors import FeatureDisabled

router = APIRouter(prefix="/api/v1/adapters", tags=["adapters"])

VersionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=200)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
StateFilter = Annotated[
    Literal["candidate", "approved", "rejected", "active", "retired", "pruned"] | None, Query()
]


def get_registry(runtime: RuntimeDep) -> AdapterRegistry:
    if runtime.adapters is None:  # pragma: no cover - always built by the app
        raise FeatureDisabled("the adapter registry is not running")
    return runtime.adapters


Registry = Annotated[AdapterRegistry, Depends(get_registry)]


@router.get("", response_model=AdapterPage)
async def list_adapters(
    admin: AdminUser,
    registry: Registry,
    before: Before = None,
    limit: Limit = 20,
    state: StateFilter = None,
) -> AdapterPage:
    """Every version, newest first: dataset, run, metrics, sha256, state, gate, decision."""
    return await registry.page(before, limit, state)


@router.get("/active", response_model=PointerOut)
async def active(admin: AdminUser, registry: Registry) -> PointerOut:
    """What serves now: the active version (null: the base model) and the canary."""
    return await registry.pointer()


@router.get("/changes", response_model=list[ChangeOut])
async def changes(
    admin: AdminUser, registry: Registry, before: Before = None, limit: Limit = 50
) -> list[ChangeOut]:
    """Every move of the pointer, newest first."""
    return await registry.changes(limit, before)


@router.get("/compare", response_model=Comparison)
async def compare(
    admin: AdminUser,
    registry: Registry,
    days: Annotated[float, Query(gt=0, le=3650)] = 30.0,
) -> Comparison:
    """Per version: thumbs-down rate, confidence and latency with 95 % intervals; and
    the one-sided p-value that the canary is worse than the active version."""
    return await registry.compare(days)


@router.post("/register", response_model=AdapterOut, status_code=201)
async def register(admin: AdminUser, registry: Registry, body: RegisterRun) -> AdapterOut:
    """Register a completed run's adapter (done by itself when a run completes)."""
    return await registry.register_run(body.run_id, admin.username)


@router.post("/rollback", response_model=PointerOut)
async def rollback(admin: AdminUser, registry: Registry, body: Decision) -> PointerOut:
    """Back to the version active before the current one (or the base model)."""
    return await registry.rollback(admin.username, body.note)


@router.post("/deactivate", response_model=PointerOut)
async def deactivate(admin: AdminUser, registry: Registry, body: Decision) -> PointerOut:
    """The base model answers again; the canary stops."""
    return await registry.deactivate(admin.username, body.note)


@router.post("/prune", response_model=Pruned)
async def prune(admin: AdminUser, registry: Registry, body: Prune) -> Pruned:
    """Delete the files of rejected versions and of retired ones beyond the newest
    ``keep``; their rows and history stay (state ``pruned``)."""
    return Pruned(pruned=await registry.prune(body.keep, admin.username))


@router.post("/canary/stop", response_model=PointerOut)
async def stop_canary(admin: AdminUser, registry: Registry, body: Decision) -> PointerOut:
    return await registry.stop_canary(admin.username, body.note)


@router.get("/{version_id}", response_model=AdapterOut)
async def show(admin: AdminUser, registry: Registry, version_id: VersionId) -> AdapterOut:
    return await registry.get(version_id)


@router.post("/{version_id}/approve", response_model=AdapterOut)
async def approve(
    admin: AdminUser, registry: Registry, version_id: VersionId, body: Decision
) -> AdapterOut:
    return await registry.approve(version_id, admin.username, body.note)


@router.post("/{version_id}/reject", response_model=AdapterOut)
async def reject(
    admin: AdminUser, registry: Registry, version_id: VersionId, body: Decision
) -> AdapterOut:
    return await registry.reject(version_id, admin.username, body.note)


@router.post("/{version_id}/activate", response_model=PointerOut)
async def activate(
    admin: AdminUser, registry: Registry, version_id: VersionId, body: Decision
) -> PointerOut:
    """An approved version serves, in every process and Ray replica, within seconds."""
    return await registry.activate(version_id, admin.username, body.note)


@router.post("/{version_id}/canary", response_model=PointerOut)
async def start_canary(
    admin: AdminUser, registry: Registry, version_id: VersionId, body: CanaryStart
) -> PointerOut:
    """A share of turns (default MONGARS_TRAINING__CANARY_SHARE) uses this version."""
    return await registry.start_canary(version_id, body.share, admin.username, body.note)
