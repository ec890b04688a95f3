"""/api/v1/memory: list, search, read, add, edit, forget and export your memory
(docs/memory.md). Every route acts on the caller's own memories only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from mongars.deps import CurrentUser, RuntimeDep
from mongars.memory.control import SEARCH_K_MAX, MemoryControl
from mongars.memory.schemas import (
    ExportOut,
    ForgetAllOut,
    MemoryCreate,
    MemoryEdit,
    MemoryOut,
    MemoryPage,
    SearchOut,
)

router = APIRouter(prefix="/api/v1/memory", tags=["memory"])


def get_memory_control(runtime: RuntimeDep) -> MemoryControl:
    return MemoryControl.from_runtime(runtime)


ControlDep = Annotated[MemoryControl, Depends(get_memory_control)]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page, 1-100.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` from the previous page.")
]
Kind = Annotated[
    str | None,
    Query(pattern=r"^[a-z_]{1,16}$", description="Only this kind: turn, note, fact or summary."),
]
# The :int converter in the paths keeps /search, /export and /facts out of these routes.
MemoryId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=MemoryPage)
async def list_memories(
    user: CurrentUser,
    control: ControlDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    kind: Kind = None,
    thread_id: Annotated[
        str | None, Query(max_length=128, description="Only memories from this thread.")
    ] = None,
) -> MemoryPage:
    """Your memories, newest first (by when the remembered thing happened)."""
    return await control.list_memories(user, limit, cursor, kind, thread_id)


@router.post("", response_model=MemoryOut, status_code=201)
async def add_memory(user: CurrentUser, control: ControlDep, body: MemoryCreate) -> MemoryOut:
    """Remember a note (kind ``note``); it is searchable as soon as this returns."""
    return await control.add_note(user, body.text)


@router.delete("", response_model=ForgetAllOut)
async def forget_all(
    user: CurrentUser,
    control: ControlDep,
    confirm: Annotated[bool, Query(description="Must be true: this cannot be undone.")] = False,
) -> ForgetAllOut:
    """Forget every memory you have (conversations in threads are kept)."""
    return await control.forget_all(user, confirm)


@router.get("/search", response_model=SearchOut)
async def search_memories(
    user: CurrentUser,
    control: ControlDep,
    q: Annotated[str, Query(description="What to recall, 1-2000 characters.")],
    k: Annotated[int, Query(ge=1, le=SEARCH_K_MAX, description="How many hits.")] = 10,
    thread_id: Annotated[str | None, Query(max_length=128)] = None,
) -> SearchOut:
    """Hybrid recall (meaning + words + recency), the same a chat turn uses; best first."""
    return await control.search(user, q, k, thread_id)


@router.get(
    "/export",
    response_model=ExportOut,
    responses={200: {"description": "A JSON file (Content-Disposition: attachment)."}},
)
async def export_memory(user: CurrentUser, control: ControlDep) -> Response:
    """Download everything monGARS stores about you, as one JSON document."""
    return export_download(user.username, await control.export(user))


def export_download(username: str, export: ExportOut) -> Response:
    """The export as a JSON file download (the API's and the console's)."""
    name = f"mongars-export-{username}-{export.exported_at.date().isoformat()}.json"
    return Response(
        export.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/{memory_id:int}", response_model=MemoryOut)
async def get_memory(user: CurrentUser, control: ControlDep, memory_id: MemoryId) -> MemoryOut:
    return await control.get(user, memory_id)


@router.patch("/{memory_id:int}", response_model=MemoryOut)
async def edit_memory(
    user: CurrentUser, control: ControlDep, memory_id: MemoryId, body: MemoryEdit
) -> MemoryOut:
    """Replace the text; full-text search sees it at once, semantic recall once re-embedded
    (``indexed`` turns true again)."""
    return await control.edit(user, memory_id, body.text)


@router.delete("/{memory_id:int}", status_code=204, response_class=Response)
async def forget_memory(user: CurrentUser, control: ControlDep, memory_id: MemoryId) -> None:
    """Forget one memory: it is deleted and can no longer be recalled."""
    await control.forget(user, memory_id)
