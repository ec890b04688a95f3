"""Console page for the evolution engine (admins): its decisions with their inputs,
the figures now, a pass on demand, and approve/reject for what awaits an admin
(docs/evolution.md). Every action is audited by the engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from mongars.evolution.endpoints import Engine
from mongars.web.render import HtmlRoute, redirect, render
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin/evolution", route_class=HtmlRoute, include_in_schema=False)

DecisionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Note = Annotated[str, Form(max_length=500)]
PAGE = 30


@router.get("")
async def evolution_page(
    request: Request, user: WebAdmin, engine: Engine, before: Before = None
) -> HTMLResponse:
    page = await engine.decisions(before, PAGE)
    figures = (await engine.diagnostics()).as_dict()
    return render(
        request,
        "admin_evolution.html",
        {
            "user": user,
            "page": page,
            "figures": figures,
            "before": before,
            "settings": engine.settings.evolution,
        },
    )


@router.post("/diagnose", dependencies=[CsrfChecked])
async def diagnose(user: WebAdmin, engine: Engine) -> Response:
    made = await engine.diagnose()
    return redirect("/admin/evolution", flash=f"Diagnosed: {len(made)} new decision(s).")


@router.post("/decisions/{decision_id}/approve", dependencies=[CsrfChecked])
async def approve(
    user: WebAdmin, engine: Engine, decision_id: DecisionId, note: Note = ""
) -> Response:
    out = await engine.approve(decision_id, user.username, note)
    return redirect("/admin/evolution", flash=f"Decision {decision_id} {out.status}: {out.outcome}")


@router.post("/decisions/{decision_id}/reject", dependencies=[CsrfChecked])
async def reject(
    user: WebAdmin, engine: Engine, decision_id: DecisionId, note: Note = ""
) -> Response:
    await engine.reject(decision_id, user.username, note)
    return redirect("/admin/evolution", flash=f"Decision {decision_id} rejected.")
