"""Console pages: first-admin setup, login/logout, account, and chat (HTTP only).

Every page works without JavaScript (forms post, the server renders the answer);
chat.js upgrades the chat page to live streaming over the WebSocket.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from mongars.auth.models import User
from mongars.auth.schemas import Credentials
from mongars.deps import AuthServiceDep, RuntimeDep, SessionDep
from mongars.errors import DomainError, InvalidInput
from mongars.persona.contributor import persona_service
from mongars.rate_limits import ConsoleChatLimit
from mongars.realtime.tickets import issue_ticket
from mongars.threads.schemas import ThreadRename
from mongars.threads.service import ThreadService
from mongars.web.documents_endpoints import router as documents_router
from mongars.web.render import HtmlRoute, redirect, render, safe_next
from mongars.web.service import chat_page, run_turn
from mongars.web.session import (
    CsrfChecked,
    OptionalWebUser,
    WebPrincipal,
    WebUser,
    end_session,
    start_session,
)

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
ThreadId = Annotated[str, Path(max_length=128)]
Text = Annotated[str, Form(max_length=64_000)]
Short = Annotated[str, Form(max_length=1024)]


async def _setup_required(runtime: RuntimeDep, auth: AuthServiceDep) -> bool:
    return runtime.setup_token is not None and await auth.users.count() == 0


@router.get("/")
async def home(runtime: RuntimeDep, auth: AuthServiceDep, user: OptionalWebUser) -> Response:
    if user is not None:
        return RedirectResponse("/chat", status_code=303)
    target = "/setup" if await _setup_required(runtime, auth) else "/login"
    return RedirectResponse(target, status_code=303)


# -- first admin --------------------------------------------------------------------


@router.get("/setup")
async def setup_page(request: Request, runtime: RuntimeDep, auth: AuthServiceDep) -> Response:
    if not await _setup_required(runtime, auth):
        return RedirectResponse("/login", status_code=303)
    return render(request, "setup.html")


@router.post("/setup", dependencies=[CsrfChecked])
async def setup_submit(
    request: Request,
    runtime: RuntimeDep,
    auth: AuthServiceDep,
    token: Short,
    username: Short,
    password: Short,
) -> Response:
    try:
        creds = Credentials(username=username, password=password)
        await auth.setup_admin(runtime.setup_token, token.strip(), creds.username, password)
    except (DomainError, ValidationError) as exc:
        detail = _detail(exc)
        status = exc.status if isinstance(exc, DomainError) else 422
        return render(request, "setup.html", {"error": detail, "username": username}, status)
    runtime.setup_token = None  # one use only
    user = await auth.authenticate(creds.username, password)
    response = redirect("/chat", flash=f"Welcome, {user.username}: you are the first admin.")
    start_session(response, request, auth.issue_token(user)[0], auth.settings.token_ttl_minutes)
    return response


def _detail(exc: DomainError | ValidationError) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    return "; ".join(
        str(e.get("msg", "invalid")).removeprefix("Value error, ") for e in exc.errors()
    )


# -- login / logout -------------------------------------------------------------------


@router.get("/login")
async def login_page(
    request: Request,
    runtime: RuntimeDep,
    auth: AuthServiceDep,
    user: OptionalWebUser,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    if await _setup_required(runtime, auth):
        return RedirectResponse("/setup", status_code=303)
    return render(request, "login.html", {"next": safe_next(next)})


@router.post("/login", dependencies=[CsrfChecked])
async def login_submit(
    request: Request,
    runtime: RuntimeDep,
    auth: AuthServiceDep,
    username: Annotated[str, Form(max_length=256)],
    password: Short,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        await runtime.login_limiter.hit(username, address)
        user = await auth.authenticate(username, password)
    except DomainError as exc:
        context = {"error": exc.detail, "username": username, "next": safe_next(next)}
        return render(request, "login.html", context, exc.status, exc.headers)
    response = redirect(safe_next(next))
    start_session(response, request, auth.issue_token(user)[0], auth.settings.token_ttl_minutes)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request, auth: AuthServiceDep, principal: WebPrincipal) -> Response:
    if principal is not None:
        await auth.logout(principal[1])  # the token in the cookie stops working everywhere
    response = redirect("/login", flash="You are logged out.")
    end_session(response, request)
    return response


# -- account -------------------------------------------------------------------------


async def _account(
    request: Request, runtime: RuntimeDep, user: User, error: DomainError | None = None
) -> HTMLResponse:
    profile = await persona_service(runtime).profile(user)  # the training consent
    context = {"user": user, "profile": profile, "error": error.detail if error else None}
    return render(request, "account.html", context, error.status if error else 200)


@router.get("/account")
async def account_page(request: Request, runtime: RuntimeDep, user: WebUser) -> HTMLResponse:
    return await _account(request, runtime, user)


@router.post("/account/password", dependencies=[CsrfChecked])
async def account_password(
    request: Request,
    runtime: RuntimeDep,
    user: WebUser,
    auth: AuthServiceDep,
    old_password: Short,
    new_password: Short,
) -> Response:
    try:
        if old_password == new_password:
            raise InvalidInput("the new password must differ from the old one")
        await auth.change_password(user, old_password, new_password)
    except DomainError as exc:
        return await _account(request, runtime, user, exc)
    # Older tokens (this cookie's included) stopped working: start a new session.
    response = redirect("/account", flash="Password changed. Other sessions are logged out.")
    start_session(response, request, auth.issue_token(user)[0], auth.settings.token_ttl_minutes)
    return response


# -- chat ----------------------------------------------------------------------------


async def _chat(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    user: WebUser,
    thread_id: str | None,
    q: str,
    error: DomainError | None = None,
    draft: str = "",
) -> HTMLResponse:
    running = {r["thread_id"] for r in runtime.hub.running_for(user.id)}
    page = await chat_page(session, user, thread_id, q, running)
    context = {
        "user": user,
        "page": page,
        "thread_id": thread_id,
        "model": runtime.llm.model_id,
        "error": error.detail if error else None,
        "draft": draft,
        "max_chars": runtime.settings.chat.max_message_chars,
    }
    return render(request, "chat.html", context, error.status if error else 200)


Search = Annotated[str, Query(max_length=200)]


@router.get("/chat")
async def chat_new(
    request: Request, runtime: RuntimeDep, session: SessionDep, user: WebUser, q: Search = ""
) -> HTMLResponse:
    return await _chat(request, runtime, session, user, None, q)


@router.get("/chat/{thread_id}")
async def chat_thread(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    user: WebUser,
    thread_id: ThreadId,
    q: Search = "",
) -> HTMLResponse:
    return await _chat(request, runtime, session, user, thread_id, q)


@router.post("/chat/send", dependencies=[CsrfChecked, ConsoleChatLimit])
async def chat_send(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    user: WebUser,
    message: Text,
    thread_id: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    """The no-JavaScript path: answer, store, then show the thread."""
    try:
        thread = await run_turn(runtime, user, message, thread_id or None)
    except DomainError as exc:
        return await _chat(request, runtime, session, user, thread_id or None, "", exc, message)
    return redirect(f"/chat/{thread}#last")


@router.post("/chat/{thread_id}/regenerate", dependencies=[CsrfChecked, ConsoleChatLimit])
async def chat_regenerate(
    request: Request, runtime: RuntimeDep, session: SessionDep, user: WebUser, thread_id: ThreadId
) -> Response:
    try:
        await run_turn(runtime, user, None, thread_id)
    except DomainError as exc:
        return await _chat(request, runtime, session, user, thread_id, "", exc)
    return redirect(f"/chat/{thread_id}#last")


@router.post("/chat/new", dependencies=[CsrfChecked])
async def chat_create(session: SessionDep, user: WebUser) -> Response:
    thread = await ThreadService(session).create(user, None)
    return redirect(f"/chat/{thread.id}")


@router.post("/chat/{thread_id}/rename", dependencies=[CsrfChecked])
async def chat_rename(
    session: SessionDep, user: WebUser, thread_id: ThreadId, title: Annotated[str, Form()] = ""
) -> Response:
    try:
        clean = ThreadRename(title=title).title
    except ValidationError as exc:
        raise InvalidInput(f"title: {_detail(exc)}") from exc
    await ThreadService(session).rename(user, thread_id, clean)
    return redirect(f"/chat/{thread_id}", flash="Thread renamed.")


@router.post("/chat/{thread_id}/delete", dependencies=[CsrfChecked])
async def chat_delete(session: SessionDep, user: WebUser, thread_id: ThreadId) -> Response:
    await ThreadService(session).delete(user, thread_id)
    return redirect("/chat", flash="Thread deleted.")


@router.post("/chat/ticket", dependencies=[CsrfChecked])
async def chat_ticket(runtime: RuntimeDep, user: WebUser) -> JSONResponse:
    """A single-use WebSocket ticket for chat.js (the session cookie never reaches scripts)."""
    ttl = runtime.settings.realtime.ticket_ttl_s
    ticket = issue_ticket(runtime.secret, user.id, ttl)
    return JSONResponse({"ticket": ticket, "ttl": ttl}, headers={"Cache-Control": "no-store"})


# The documents page is part of the console (it has no separate entry in app.py).
router.include_router(documents_router)
