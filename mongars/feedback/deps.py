"""``FeedbackServiceDep``: the feedback service on the request's session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from mongars.deps import RuntimeDep, SessionDep
from mongars.feedback.service import FeedbackService


def get_feedback_service(session: SessionDep, runtime: RuntimeDep) -> FeedbackService:
    return FeedbackService(
        session, runtime.settings.chat.max_message_chars, runtime.metrics.feedback
    )


FeedbackServiceDep = Annotated[FeedbackService, Depends(get_feedback_service)]
