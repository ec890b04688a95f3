"""API key management for the logged-in user: ``/api/v1/keys``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from mongars.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyUpdate
from mongars.apikeys.service import ApiKeyService
from mongars.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/keys", tags=["api keys"])


def get_key_service(session: SessionDep) -> ApiKeyService:
    return ApiKeyService(session)


KeyServiceDep = Annotated[ApiKeyService, Depends(get_key_service)]
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # INTEGER on PostgreSQL


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, user: CurrentUser, keys: KeyServiceDep) -> ApiKeyCreated:
    """Create a key. The ``key`` field is shown in this response only: store it now."""
    return await keys.create(user, body)


@router.get("", response_model=list[ApiKeyOut])
async def list_keys(user: CurrentUser, keys: KeyServiceDep) -> list[ApiKeyOut]:
    """The caller's keys, newest first (revoked ones too); never the secret."""
    return await keys.list_keys(user)


@router.patch("/{key_id}", response_model=ApiKeyOut)
async def update_key(
    key_id: KeyId, body: ApiKeyUpdate, user: CurrentUser, keys: KeyServiceDep
) -> ApiKeyOut:
    return await keys.update(user, key_id, body)


@router.delete("/{key_id}", status_code=204, response_class=Response)
async def revoke_key(key_id: KeyId, user: CurrentUser, keys: KeyServiceDep) -> Response:
    """Revoke a key: requests made with it get 401 from now on."""
    await keys.revoke(user, key_id)
    return Response(status_code=204)
