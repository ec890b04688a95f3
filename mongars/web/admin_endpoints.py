"""Console admin pages: users, audit log, model and live metrics (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mongars.auth.admin import AdminService
from mongars.auth.schemas import RegisterRequest
from mongars.deps import RuntimeDep, SessionDep
from mongars.errors import InvalidInput
from mongars.web.metrics import metrics_summary
from mongars.web.render import HtmlRoute, redirect, render
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin", route_class=HtmlRoute, include_in_schema=False)
Username = Annotated[str, Form(max_length=64)]
Password = Annotated[str, Form(max_length=1024)]


def get_admin_service(request: Request, session: SessionDep, runtime: RuntimeDep) -> AdminService:
    address = request.client.host if request.client else None
    return AdminService(session, runtime.settings.auth, runtime.secret, address)


AdminServiceDep = Annotated[AdminService, Depends(get_admin_service)]


@router.get("")
async def admin_home(_: WebAdmin) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/users")
async def users_page(request: Request, user: WebAdmin, admin: AdminServiceDep) -> HTMLResponse:
    return render(request, "admin_users.html", {"user": user, "users": await admin.list_users()})


@router.post("/users", dependencies=[CsrfChecked])
async def users_create(
    actor: WebAdmin,
    admin: AdminServiceDep,
    username: Username,
    password: Password,
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    try:
        body = RegisterRequest(username=username, password=password, is_admin=is_admin)
    except ValueError as exc:  # pydantic's ValidationError
        raise InvalidInput(str(exc).splitlines()[-1].strip().removeprefix("Value error, ")) from exc
    await admin.create_user(actor, body.username, body.password, is_admin=body.is_admin)
    return redirect("/admin/users", flash=f"User {body.username} created.")


@router.post("/users/{username}/admin", dependencies=[CsrfChecked])
async def users_set_admin(
    actor: WebAdmin, admin: AdminServiceDep, username: str, is_admin: Annotated[bool, Form()]
) -> Response:
    await admin.set_admin(actor, username, is_admin)
    verb = "promoted to admin" if is_admin else "is no longer an admin"
    return redirect("/admin/users", flash=f"{username} {verb}.")


@router.post("/users/{username}/active", dependencies=[CsrfChecked])
async def users_set_active(
    actor: WebAdmin, admin: AdminServiceDep, username: str, is_active: Annotated[bool, Form()]
) -> Response:
    await admin.set_active(actor, username, is_active)
    return redirect("/admin/users", flash=f"{username} {'enabled' if is_active else 'disabled'}.")


@router.post("/users/{username}/password", dependencies=[CsrfChecked])
async def users_reset_password(
    actor: WebAdmin, admin: AdminServiceDep, username: str, password: Password
) -> Response:
    await admin.reset_password(actor, username, password)
    return redirect("/admin/users", flash=f"Password of {username} reset; their sessions ended.")


@router.get("/audit")
async def audit_page(
    request: Request,
    user: WebAdmin,
    admin: AdminServiceDep,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    page = await admin.audit_page(50, before)
    return render(request, "admin_audit.html", {"user": user, "page": page})


@router.get("/model")
async def model_page(request: Request, runtime: RuntimeDep, user: WebAdmin) -> HTMLResponse:
    summary = metrics_summary(runtime)
    return render(request, "admin_model.html", {"user": user, "summary": summary})


@router.get("/metrics.json")
async def metrics_json(runtime: RuntimeDep, _: WebAdmin) -> JSONResponse:
    """Cumulative counters for the live charts (the console computes rates)."""
    return JSONResponse(metrics_summary(runtime), headers={"Cache-Control": "no-store"})
