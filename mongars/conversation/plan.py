"""How a turn is shaped before generation: the plan and its contributors.

Features that change a turn (persona steering, long-term memory, image
captions) are *contributors*: each gets the turn's plan before the prompt is
assembled and may add system directives or context, change the length budget
and sampling, and record what it did and why (stored on the turn). After the
turn is stored, each may observe it (e.g. update style metrics, index it).
Contributors are built by the app factory and kept on the runtime, in order.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mongars.auth.models import User
from mongars.conversation.context import PastTurn


@dataclass
class TurnPlan:
    user: User
    thread_id: str
    message: str
    history: Sequence[PastTurn]  # newest first: what the prompt may include
    max_tokens: int
    temperature: float
    top_p: float
    system_parts: list[str] = field(default_factory=list)  # directives, in order
    context_parts: list[str] = field(default_factory=list)  # retrieved or attached context
    steering: dict[str, Any] = field(default_factory=dict)  # stored: what was applied, why
    memory_ids: list[int] = field(default_factory=list)  # stored: memories used
    citations: list[dict[str, Any]] = field(default_factory=list)  # stored: passages given
    # Contributors this turn must not use (e.g. an API key without memory or persona).
    skip: frozenset[str] = frozenset()
    image: bytes | None = None  # an attached image, raw bytes (a captioner consumes it)
    image_caption: str | None = None  # stored with the turn


@dataclass(frozen=True, slots=True)
class StoredTurn:
    id: int
    user_id: int
    thread_id: str
    query: str
    response: str
    status: str


class TurnContributor(ABC):  # noqa: B024 - both hooks are optional
    name: str = "contributor"

    async def contribute(self, plan: TurnPlan) -> None:  # noqa: B027
        """Adjust the plan before the prompt is assembled (may raise a domain error)."""

    async def after_turn(self, plan: TurnPlan, turn: StoredTurn) -> None:  # noqa: B027
        """Observe the stored turn; failures are logged, never fail the turn."""
