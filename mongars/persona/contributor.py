"""PersonaContributor: steer each turn from the user's profile, then learn from it."""

from __future__ import annotations

from mongars.conversation.plan import StoredTurn, TurnContributor, TurnPlan
from mongars.persona.service import PersonaService
from mongars.persona.steering import steer
from mongars.runtime import Runtime


class PersonaContributor(TurnContributor):
    """Adds the user's own instructions and the chosen directives to the system
    prompt, lowers the length budget or temperature when the profile says so, and
    records all of it in ``plan.steering["persona"]``. Never touches the answer."""

    name = "persona"

    def __init__(self, service: PersonaService) -> None:
        self.service = service

    async def contribute(self, plan: TurnPlan) -> None:
        profile = await self.service.load(plan.user.id)
        steering = steer(profile, self.service.cfg, plan.max_tokens, plan.temperature)
        if steering.instructions:
            plan.system_parts.append(steering.instructions)
        if steering.directives:
            plan.system_parts.append(" ".join(steering.directives))
        plan.max_tokens = steering.max_tokens
        plan.temperature = steering.temperature
        plan.steering["persona"] = steering.record

    async def after_turn(self, plan: TurnPlan, turn: StoredTurn) -> None:
        await self.service.observe(turn.user_id, turn.thread_id, turn.query)


def persona_service(runtime: Runtime) -> PersonaService:
    """The runtime's persona service (sharing the contributor's profile cache)."""
    for contributor in runtime.contributors:
        if isinstance(contributor, PersonaContributor):
            return contributor.service
    return PersonaService(runtime.sessions, runtime.settings)
