"""Console documents page: list, filter, upload, delete and search documents.

Works without JavaScript: the upload is a plain multipart form post (CSRF token
like every console form), answered by a redirect with a flash message, or by the
page again with the reason and the error's status when the file is refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from mongars.auth.models import User
from mongars.deps import RuntimeDep
from mongars.errors import DomainError, FeatureDisabled, InvalidInput
from mongars.rate_limits import ConsoleUploadLimit
from mongars.research.service import Actor, DocumentService
from mongars.runtime import Runtime
from mongars.web.render import HtmlRoute, redirect, render, safe_next
from mongars.web.session import CsrfChecked, WebUser

router = APIRouter(prefix="/documents", route_class=HtmlRoute, include_in_schema=False)
DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Back = Annotated[str | None, Form(max_length=2000)]
# The same rule as the documents API's ``collection`` field.
COLLECTION_RE = re.compile(r"^[\w][\w./@+ -]{0,99}$")
PAGE = 50
SEARCH_K = 10
OFF = "documents are off on this server (MONGARS_RESEARCH__DOCUMENTS=false)"
STATUS_TEXT = {
    "created": "added",
    "updated": "updated: its passages were replaced",
    "unchanged": "unchanged: the same file is already stored",
}


def _service(runtime: Runtime) -> DocumentService:
    if runtime.documents is None:
        raise FeatureDisabled(OFF)
    return runtime.documents.service


def _actor(user: User) -> Actor:
    return Actor(user.id, user.is_admin)


def _collection(name: str) -> str:
    name = name.strip() or "default"
    if not COLLECTION_RE.match(name):
        raise InvalidInput(
            "collection: up to 100 letters, digits, spaces or . / _ @ + - "
            "(starting with a letter, digit or _)"
        )
    return name


async def _page(
    request: Request,
    runtime: Runtime,
    user: User,
    collection: str = "",
    q: str = "",
    cursor: int | None = None,
    error: DomainError | None = None,
) -> HTMLResponse:
    """The documents page (or the reason it cannot be shown), with ``error`` if any."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context: dict[str, Any] = {
        "user": user,
        "collection": collection,
        "q": q,
        "here": here if request.method == "GET" else "/documents",
        "enabled": runtime.documents is not None,
        "max_upload": runtime.settings.research.max_upload_bytes,
    }
    status = error.status if error else 200
    if error is not None:
        context["error"] = error.detail
    if runtime.documents is None:
        return render(request, "documents.html", context, status)
    docs, actor = runtime.documents.service, _actor(user)
    try:
        context["collections"] = await docs.collections(actor)
        if q.strip():
            scope = [collection] if collection else None
            context["passages"] = await docs.search.search(user.id, q, SEARCH_K, scope)
        else:
            page = await docs.documents(actor, collection or None, cursor, PAGE)
            context["documents"], context["next_cursor"] = page.items, page.next_cursor
    except DomainError as exc:  # e.g. a collection filter naming none of yours
        context["error"], status = exc.detail, error.status if error else exc.status
    return render(request, "documents.html", context, status)


@router.get("")
async def documents_page(
    request: Request,
    runtime: RuntimeDep,
    user: WebUser,
    collection: Annotated[str, Query(max_length=100)] = "",
    q: Annotated[str, Query(max_length=4000)] = "",
    cursor: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    return await _page(request, runtime, user, collection.strip(), q, cursor)


@router.post("/upload", dependencies=[CsrfChecked, ConsoleUploadLimit])
async def documents_upload(
    request: Request,
    runtime: RuntimeDep,
    user: WebUser,
    file: Annotated[UploadFile | None, File()] = None,
    collection: Annotated[str, Form(max_length=200)] = "default",
    shared: Annotated[bool, Form()] = False,
) -> Response:
    """Ingest one file; the page again with the reason (and its status) when refused."""
    try:
        docs = _service(runtime)
        name = _collection(collection)
        if file is None or not file.filename:
            raise InvalidInput("choose a file to upload")
        data = await file.read()
        result = await docs.ingest(
            _actor(user), name, file.filename, data, content_type=file.content_type, shared=shared
        )
    except DomainError as exc:
        return await _page(request, runtime, user, error=exc)
    doc = result.document
    where = f"{doc.collection} (shared)" if doc.shared else doc.collection
    flash = f"{doc.path} in {where}: {STATUS_TEXT[result.status]} ({doc.chunks} passages)."
    return redirect("/documents", flash=flash)


@router.post("/{document_id}/delete", dependencies=[CsrfChecked])
async def documents_delete(
    runtime: RuntimeDep, user: WebUser, document_id: DocumentId, back: Back = None
) -> Response:
    docs = _service(runtime)
    doc = await docs.document(_actor(user), document_id)  # 404 for another user's
    await docs.delete_document(_actor(user), document_id)
    return redirect(safe_next(back, "/documents"), flash=f"Deleted {doc.path}.")
