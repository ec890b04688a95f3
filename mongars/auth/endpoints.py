"""Account routes: /token, registration, password, user admin, first-admin setup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request

from mongars.auth.admin import AUDIT_PAGE_MAX, AdminService
from mongars.auth.schemas import (
    AuditPage,
    ChangePasswordRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    SetupRequest,
    SetupStatus,
    StatusResponse,
    TokenResponse,
    UserList,
    UserOut,
)
from mongars.deps import (
    AdminUser,
    AuthServiceDep,
    CurrentUser,
    OptionalUser,
    PrincipalDep,
    RuntimeDep,
    SessionDep,
)
from mongars.errors import Forbidden, InvalidInput
from mongars.settings import RegistrationPolicy

router = APIRouter(tags=["auth"])


def get_admin_service(request: Request, session: SessionDep, runtime: RuntimeDep) -> AdminService:
    address = request.client.host if request.client else None
    return AdminService(session, runtime.settings.auth, runtime.secret, address)


AdminServiceDep = Annotated[AdminService, Depends(get_admin_service)]


@router.post("/token", response_model=TokenResponse)
async def login(
    request: Request,
    runtime: RuntimeDep,
    auth: AuthServiceDep,
    username: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=1024)],
) -> TokenResponse:
    address = request.client.host if request.client else "unknown"
    await runtime.login_limiter.hit(username, address)
    user = await auth.authenticate(username, password)
    token, expires = auth.issue_token(user)
    return TokenResponse(access_token=token, expires_at=expires)


@router.post("/api/v1/auth/logout", response_model=StatusResponse)
async def logout(auth: AuthServiceDep, principal: PrincipalDep) -> StatusResponse:
    await auth.logout(principal[1])
    return StatusResponse(status="logged_out")


@router.get("/api/v1/setup", response_model=SetupStatus)
async def setup_status(runtime: RuntimeDep, auth: AuthServiceDep) -> SetupStatus:
    required = runtime.setup_token is not None and await auth.users.count() == 0
    return SetupStatus(setup_required=required)


@router.post("/api/v1/setup", response_model=RegisterResponse, status_code=201)
async def setup_first_admin(
    body: SetupRequest, runtime: RuntimeDep, auth: AuthServiceDep
) -> RegisterResponse:
    user = await auth.setup_admin(runtime.setup_token, body.token, body.username, body.password)
    runtime.setup_token = None  # one use only
    return RegisterResponse(is_admin=user.is_admin)


@router.post("/api/v1/user/register", response_model=RegisterResponse)
async def register(
    body: RegisterRequest,
    runtime: RuntimeDep,
    auth: AuthServiceDep,
    admin: AdminServiceDep,
    caller: OptionalUser,
) -> RegisterResponse:
    policy = runtime.settings.auth.registration
    caller_is_admin = caller is not None and caller.is_admin
    if policy is RegistrationPolicy.closed:
        raise Forbidden("registration is closed on this server")
    if policy is RegistrationPolicy.admin_only and not caller_is_admin:
        raise Forbidden("only an admin can register users on this server")
    if body.is_admin and not caller_is_admin:
        raise Forbidden("only an admin can create an admin")
    if caller is not None and caller_is_admin:  # an admin action: audited
        user = await admin.create_user(caller, body.username, body.password, is_admin=body.is_admin)
    else:
        user = await auth.create_user(body.username, body.password, is_admin=body.is_admin)
    return RegisterResponse(is_admin=user.is_admin)


@router.post("/api/v1/user/change-password", response_model=StatusResponse)
async def change_password(
    body: ChangePasswordRequest, user: CurrentUser, auth: AuthServiceDep
) -> StatusResponse:
    if body.old_password == body.new_password:
        raise InvalidInput("the new password must differ from the old one")
    await auth.change_password(user, body.old_password, body.new_password)
    return StatusResponse(status="changed")


@router.get("/api/v1/user/list", response_model=UserList)
async def list_users(_: AdminUser, auth: AuthServiceDep) -> UserList:
    return UserList(users=await auth.list_usernames())


@router.get("/api/v1/user/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return UserOut(
        id=user.id, username=user.username, is_admin=user.is_admin, is_active=user.is_active
    )


@router.get("/api/v1/admin/users", response_model=list[UserOut])
async def admin_list_users(_: AdminUser, admin: AdminServiceDep) -> list[UserOut]:
    return await admin.list_users()


@router.post("/api/v1/admin/users", response_model=UserOut, status_code=201)
async def admin_create_user(
    body: RegisterRequest, actor: AdminUser, admin: AdminServiceDep
) -> UserOut:
    return await admin.create_user(actor, body.username, body.password, is_admin=body.is_admin)


@router.post("/api/v1/admin/users/{username}/admin", response_model=UserOut)
async def admin_set_admin(
    username: str, is_admin: bool, actor: AdminUser, admin: AdminServiceDep
) -> UserOut:
    return await admin.set_admin(actor, username, is_admin)


@router.post("/api/v1/admin/users/{username}/active", response_model=UserOut)
async def admin_set_active(
    username: str, is_active: bool, actor: AdminUser, admin: AdminServiceDep
) -> UserOut:
    return await admin.set_active(actor, username, is_active)


@router.post("/api/v1/admin/users/{username}/password", response_model=UserOut)
async def admin_reset_password(
    username: str, body: ResetPasswordRequest, actor: AdminUser, admin: AdminServiceDep
) -> UserOut:
    """Set a user's password; every token they held stops working at once."""
    return await admin.reset_password(actor, username, body.password)


@router.get("/api/v1/admin/audit", response_model=AuditPage)
async def admin_audit_log(
    _: AdminUser,
    admin: AdminServiceDep,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> AuditPage:
    """Admin actions, newest first; ``before`` = the previous page's ``next_before``."""
    return await admin.audit_page(limit, before)
