"""/api/v1/profile: see, set and reset your profile (docs/persona.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mongars.deps import CurrentUser, RuntimeDep
from mongars.persona.contributor import persona_service
from mongars.persona.schemas import ProfileOut, ProfileUpdate
from mongars.persona.service import PersonaService

router = APIRouter(prefix="/api/v1/profile", tags=["profile"])


def get_persona_service(runtime: RuntimeDep) -> PersonaService:
    return persona_service(runtime)


PersonaDep = Annotated[PersonaService, Depends(get_persona_service)]


@router.get("", response_model=ProfileOut)
async def get_profile(user: CurrentUser, persona: PersonaDep) -> ProfileOut:
    """Your explicit preferences, your measured style (each value with the number of
    messages it was measured on) and the steering the next turn would apply."""
    return await persona.profile(user)


@router.put("", response_model=ProfileOut)
async def put_profile(body: ProfileUpdate, user: CurrentUser, persona: PersonaDep) -> ProfileOut:
    """Replace your explicit preferences (a field left out or null is "not set"). Your
    training consent ``allow_training`` changes only when given (null: the server's
    default)."""
    return await persona.update(user, body)


@router.delete("", status_code=204, response_class=Response)
async def delete_profile(user: CurrentUser, persona: PersonaDep) -> None:
    """Reset your profile: explicit preferences and measured style (your training consent
    stays as you set it)."""
    await persona.reset(user)
