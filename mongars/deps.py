"""Typed dependency aliases shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import User
from mongars.auth.security import TokenClaims
from mongars.auth.service import AuthService
from mongars.db.engine import unit_of_work
from mongars.errors import Forbidden, NotAuthenticated
from mongars.llm.base import LLMProvider
from mongars.runtime import Runtime

oauth2 = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's session: the one place that commits or rolls back."""
    async with unit_of_work(runtime.sessions) as session:
        yield session


# scope="function": commit BEFORE the response is sent, so an acknowledged
# change is durable (FastAPI's default runs the exit code after sending, and a
# fast client could then read before the commit, or never learn it failed).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_llm(runtime: RuntimeDep) -> LLMProvider:
    return runtime.llm


LLMDep = Annotated[LLMProvider, Depends(get_llm)]


def get_auth_service(session: SessionDep, runtime: RuntimeDep) -> AuthService:
    return AuthService(session, runtime.settings.auth, runtime.secret)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def release_connection(session: AsyncSession) -> None:
    """End the request's read-only authentication transaction, so that its connection
    goes back to the pool at once; later queries of the request begin a new one on the
    same session. A route that then waits on work needing connections of its own (a
    streamed answer) must not hold one meanwhile: as many concurrent chats as the pool
    has connections deadlocked the server until the pool timed out (30 s), found by
    `mongars bench load`."""
    await session.commit()


async def get_principal(
    auth: AuthServiceDep, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> tuple[User, TokenClaims]:
    if not token:
        raise NotAuthenticated()
    principal = await auth.user_from_token(token)
    await release_connection(session)
    return principal


PrincipalDep = Annotated[tuple[User, TokenClaims], Depends(get_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    return principal[0]


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:  # read from the database on this request
        raise Forbidden("admin rights required")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


async def get_optional_user(
    auth: AuthServiceDep, token: Annotated[str | None, Depends(oauth2)]
) -> User | None:
    if not token:
        return None
    return (await auth.user_from_token(token))[0]


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
