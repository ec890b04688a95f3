"""Threads routes under /api/v1/threads; every route is scoped to the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from mongars.deps import CurrentUser, SessionDep
from mongars.threads.schemas import (
    MessagePage,
    SearchPage,
    ThreadCreate,
    ThreadOut,
    ThreadPage,
    ThreadRename,
)
from mongars.threads.service import ThreadService

router = APIRouter(prefix="/api/v1/threads", tags=["threads"])


def get_thread_service(session: SessionDep) -> ThreadService:
    return ThreadService(session)


ThreadServiceDep = Annotated[ThreadService, Depends(get_thread_service)]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page, 1-100.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` from the previous page.")
]
ThreadId = Annotated[str, Path(max_length=128)]


@router.post("", response_model=ThreadOut, status_code=201)
async def create_thread(
    user: CurrentUser,
    threads: ThreadServiceDep,
    body: Annotated[ThreadCreate | None, Body()] = None,
) -> ThreadOut:
    """A new, empty thread; chat into it with ``session_id`` = its ``id``."""
    return await threads.create(user, body.title if body else None)


@router.get("", response_model=ThreadPage)
async def list_threads(
    user: CurrentUser, threads: ThreadServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> ThreadPage:
    """The caller's threads, latest activity first."""
    return await threads.list_threads(user, limit, cursor)


# Declared before /{thread_id} so "search" is not taken for a thread id.
@router.get("/search", response_model=SearchPage)
async def search_threads(
    user: CurrentUser,
    threads: ThreadServiceDep,
    q: Annotated[str, Query(description="1-200 characters; matched literally.")],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> SearchPage:
    """Threads whose title or messages contain ``q``, latest activity first, with a snippet."""
    return await threads.search(user, q, limit, cursor)


@router.get("/{thread_id}", response_model=ThreadOut)
async def get_thread(
    user: CurrentUser, threads: ThreadServiceDep, thread_id: ThreadId
) -> ThreadOut:
    return await threads.get(user, thread_id)


@router.get("/{thread_id}/messages", response_model=MessagePage)
async def thread_messages(
    user: CurrentUser,
    threads: ThreadServiceDep,
    thread_id: ThreadId,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> MessagePage:
    """The thread's turns, oldest first (regenerated-away answers left out)."""
    return await threads.messages(user, thread_id, limit, cursor)


@router.patch("/{thread_id}", response_model=ThreadOut)
async def rename_thread(
    user: CurrentUser, threads: ThreadServiceDep, thread_id: ThreadId, body: ThreadRename
) -> ThreadOut:
    return await threads.rename(user, thread_id, body.title)


@router.delete("/{thread_id}", status_code=204, response_class=Response)
async def delete_thread(user: CurrentUser, threads: ThreadServiceDep, thread_id: ThreadId) -> None:
    """Delete the thread and all its messages."""
    await threads.delete(user, thread_id)
