"""Feedback on one answer: /api/v1/conversation/turns/{id}/feedback (the turn's owner only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from mongars.deps import CurrentUser
from mongars.feedback.deps import FeedbackServiceDep
from mongars.feedback.schemas import FeedbackIn, FeedbackOut

router = APIRouter(prefix="/api/v1/conversation", tags=["conversation"])
TurnId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The turn's id (`turn_id`).")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such turn for this user, or no feedback on it"}
}


@router.post("/turns/{turn_id}/feedback", response_model=FeedbackOut, responses=NOT_FOUND)
async def put_feedback(
    turn_id: TurnId, body: FeedbackIn, user: CurrentUser, feedback: FeedbackServiceDep
) -> FeedbackOut:
    """Rate your answer (up/down), suggest a better one, or comment: creates your feedback
    on the turn or replaces it (fields left out are cleared). At least one is needed."""
    return await feedback.put(user, turn_id, body)


@router.get("/turns/{turn_id}/feedback", response_model=FeedbackOut, responses=NOT_FOUND)
async def get_feedback(
    turn_id: TurnId, user: CurrentUser, feedback: FeedbackServiceDep
) -> FeedbackOut:
    return await feedback.get(user, turn_id)


@router.delete(
    "/turns/{turn_id}/feedback", status_code=204, response_class=Response, responses=NOT_FOUND
)
async def delete_feedback(turn_id: TurnId, user: CurrentUser, feedback: FeedbackServiceDep) -> None:
    """Remove your feedback on the turn."""
    await feedback.delete(user, turn_id)
