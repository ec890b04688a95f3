"""Console memory page: see, search, add, edit and forget memories; download all data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from mongars.deps import RuntimeDep
from mongars.errors import DomainError, InvalidInput
from mongars.memory.control import MemoryControl
from mongars.memory.endpoints import export_download
from mongars.memory.schemas import MemoryCreate
from mongars.web.render import HtmlRoute, redirect, render, safe_next
from mongars.web.session import CsrfChecked, WebUser

router = APIRouter(prefix="/memory", route_class=HtmlRoute, include_in_schema=False)
MemoryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Back = Annotated[str | None, Form(max_length=2000)]
PAGE = 50


def _text(value: str) -> str:
    try:
        return MemoryCreate(text=value).text
    except ValidationError as exc:
        msg = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        raise InvalidInput(f"text: {msg.removeprefix('Value error, ')}") from exc


@router.get("")
async def memory_page(
    request: Request,
    runtime: RuntimeDep,
    user: WebUser,
    q: Annotated[str, Query(max_length=2000)] = "",
    kind: Annotated[str, Query(pattern=r"^[a-z_]{0,16}$")] = "",
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HTMLResponse:
    control = MemoryControl.from_runtime(runtime)
    context: dict[str, object] = {"user": user, "q": q, "kind": kind, "here": request.url.path}
    if request.url.query:
        context["here"] = f"{request.url.path}?{request.url.query}"
    status = 200
    try:
        if q.strip():
            context["hits"] = (await control.search(user, q, 20, None)).items
        else:
            page = await control.list_memories(user, PAGE, cursor, kind or None, None)
            context["memories"], context["next_cursor"] = page.items, page.next_cursor
    except DomainError as exc:  # e.g. search with memory off: say so on the page
        context["error"], status = exc.detail, exc.status
    context["memory_enabled"] = runtime.settings.memory.enabled
    return render(request, "memory.html", context, status)


@router.post("/note", dependencies=[CsrfChecked])
async def memory_add(
    runtime: RuntimeDep, user: WebUser, text: Annotated[str, Form(max_length=64_000)]
) -> Response:
    await MemoryControl.from_runtime(runtime).add_note(user, _text(text))
    return redirect("/memory", flash="Remembered.")


@router.post("/{memory_id}/edit", dependencies=[CsrfChecked])
async def memory_edit(
    runtime: RuntimeDep,
    user: WebUser,
    memory_id: MemoryId,
    text: Annotated[str, Form(max_length=64_000)],
    back: Back = None,
) -> Response:
    await MemoryControl.from_runtime(runtime).edit(user, memory_id, _text(text))
    return redirect(safe_next(back, "/memory"), flash="Memory updated.")


@router.post("/{memory_id}/forget", dependencies=[CsrfChecked])
async def memory_forget(
    runtime: RuntimeDep, user: WebUser, memory_id: MemoryId, back: Back = None
) -> Response:
    await MemoryControl.from_runtime(runtime).forget(user, memory_id)
    return redirect(safe_next(back, "/memory"), flash="Forgotten.")


@router.post("/forget-all", dependencies=[CsrfChecked])
async def memory_forget_all(
    runtime: RuntimeDep, user: WebUser, confirm: Annotated[bool, Form()] = False
) -> Response:
    if not confirm:
        raise InvalidInput("forgetting everything cannot be undone: tick the confirmation box")
    result = await MemoryControl.from_runtime(runtime).forget_all(user, confirm)
    return redirect("/memory", flash=f"Forgot {result.deleted} memories.")


@router.get("/export")
async def memory_export(runtime: RuntimeDep, user: WebUser) -> Response:
    """Everything stored about the user, as a JSON download (same as the API's export)."""
    return export_download(user.username, await MemoryControl.from_runtime(runtime).export(user))
