"""Console: feedback on answers (thumbs, a better answer) and the training consent.

Plain form posts that redirect back (no JavaScript needed); feedback.js posts the
same forms with ``Accept: application/json`` and gets the new state as JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import JSONResponse, Response

from mongars.deps import RuntimeDep
from mongars.errors import DomainError, error_body
from mongars.feedback.deps import FeedbackServiceDep
from mongars.feedback.service import KEEP, Keep
from mongars.persona.contributor import persona_service
from mongars.web.render import HtmlRoute, redirect, safe_next
from mongars.web.session import CsrfChecked, WebUser

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
TurnId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Back = Annotated[str | None, Form(max_length=2000)]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.post("/chat/turns/{turn_id}/feedback", dependencies=[CsrfChecked])
async def chat_feedback(
    request: Request,
    user: WebUser,
    feedback: FeedbackServiceDep,
    turn_id: TurnId,
    rating: Annotated[Literal["up", "down", "none"] | None, Form()] = None,
    correction: Annotated[str | None, Form(max_length=1_000_000)] = None,
    back: Back = None,
) -> Response:
    """Change the rating ("none" removes it) and/or the better answer ("" removes it);
    what the form does not send is kept."""
    new_rating: Literal["up", "down"] | Keep | None = KEEP
    if rating is not None:
        new_rating = None if rating == "none" else rating
    try:
        out = await feedback.change(
            user, turn_id, new_rating, KEEP if correction is None else correction
        )
    except DomainError as exc:
        if not _wants_json(request):
            raise
        return JSONResponse(error_body(exc.detail, exc.code), status_code=exc.status)
    if _wants_json(request):
        state = {"rating": out.rating, "correction": out.correction} if out else None
        return JSONResponse({"turn_id": turn_id, "feedback": state})
    message = "Thanks: your feedback is saved." if out is not None else "Feedback removed."
    return redirect(safe_next(back, "/chat"), flash=message)


@router.post("/account/training", dependencies=[CsrfChecked])
async def account_training(
    runtime: RuntimeDep, user: WebUser, allow_training: Annotated[bool, Form()] = False
) -> Response:
    """The consent checkbox (unticked: not sent, so False)."""
    await persona_service(runtime).set_training_consent(user, allow_training)
    flash = (
        "Your conversations may now be used to train the model."
        if allow_training
        else "Your conversations will not be used to train the model."
    )
    return redirect("/account", flash=flash)
