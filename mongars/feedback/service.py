"""Feedback on answers: a user rates their own turns, suggests better answers, comments.

Only a turn's owner can see or change its feedback: another user's turn, an
admin's included, is "not found". A cancelled or regenerated-away turn can still
be rated (dataset curation decides what to do with it). Services only flush.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

from opentelemetry.metrics import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import User
from mongars.conversation.repository import ConversationRepository
from mongars.errors import InvalidInput, NotFound
from mongars.feedback.models import Feedback
from mongars.feedback.repository import FeedbackRepository
from mongars.feedback.schemas import FeedbackBrief, FeedbackIn, FeedbackOut, Rating, clean_text

KEEP = ...  # change(): leave this field as it is
Keep = EllipsisType


class FeedbackService:
    def __init__(
        self, session: AsyncSession, max_correction_chars: int, counter: Counter | None = None
    ) -> None:
        self.repo = FeedbackRepository(session)
        self.turns = ConversationRepository(session)
        self.max_correction_chars = max_correction_chars
        self.counter = counter  # feedback_total{rating=up|down|none|removed}

    async def put(self, user: User, turn_id: int, body: FeedbackIn) -> FeedbackOut:
        """Create or replace the caller's feedback on their turn."""
        self._check_correction(body.correction)
        await self._owned_turn(user, turn_id)
        row = await self.repo.put(turn_id, user.id, body.rating, body.correction, body.comment)
        self._count(body.rating or "none")
        return feedback_out(row)

    async def get(self, user: User, turn_id: int) -> FeedbackOut:
        await self._owned_turn(user, turn_id)
        row = await self.repo.get(turn_id, user.id)
        if row is None:
            raise NotFound(f"no feedback on turn {turn_id}")
        return feedback_out(row)

    async def delete(self, user: User, turn_id: int) -> None:
        await self._owned_turn(user, turn_id)
        if not await self.repo.delete(turn_id, user.id):
            raise NotFound(f"no feedback on turn {turn_id}")
        self._count("removed")

    async def change(
        self,
        user: User,
        turn_id: int,
        rating: Rating | Keep | None = KEEP,
        correction: str | Keep | None = KEEP,
    ) -> FeedbackOut | None:
        """Change some fields, keep the others (the console's thumbs and "suggest a better
        answer" are separate actions). Feedback left empty is removed: returns None."""
        await self._owned_turn(user, turn_id)
        row = await self.repo.get(turn_id, user.id)
        new_rating = _rating(row.rating if row else None) if isinstance(rating, Keep) else rating
        if isinstance(correction, Keep):
            new_correction = row.correction if row else None
        else:
            try:
                new_correction = clean_text(correction)
            except ValueError as exc:
                raise InvalidInput(f"correction: {exc}") from exc
        comment = row.comment if row else None
        if new_rating is None and new_correction is None and comment is None:
            if row is not None and await self.repo.delete(turn_id, user.id):
                self._count("removed")
            return None
        self._check_correction(new_correction)
        row = await self.repo.put(turn_id, user.id, new_rating, new_correction, comment)
        self._count(new_rating or "none")
        return feedback_out(row)

    async def _owned_turn(self, user: User, turn_id: int) -> None:
        if await self.turns.owned_turn(turn_id, user.id) is None:
            raise NotFound(f"no turn {turn_id}")  # missing and someone else's look the same

    def _check_correction(self, correction: str | None) -> None:
        if correction is not None and len(correction) > self.max_correction_chars:
            raise InvalidInput(
                f"correction: at most {self.max_correction_chars} characters "
                f"(the chat message limit); this one has {len(correction)}"
            )

    def _count(self, rating: str) -> None:
        if self.counter is not None:
            self.counter.add(1, {"rating": rating})


async def feedback_briefs(
    session: AsyncSession, user_id: int, turn_ids: Sequence[int]
) -> dict[int, FeedbackBrief]:
    """The user's current feedback on these turns (for turn listings), by turn id."""
    rows = await FeedbackRepository(session).for_turns(user_id, turn_ids)
    return {turn_id: brief(row) for turn_id, row in rows.items()}


def brief(row: Feedback) -> FeedbackBrief:
    return FeedbackBrief(rating=_rating(row.rating), correction=row.correction)


def feedback_out(row: Feedback) -> FeedbackOut:
    return FeedbackOut(
        turn_id=row.turn_id,
        rating=_rating(row.rating),
        correction=row.correction,
        comment=row.comment,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _rating(value: str | None) -> Rating | None:
    if value == "up":
        return "up"
    return "down" if value == "down" else None
