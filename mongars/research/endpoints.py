"""Documents, collections, search, rag-context and knowledge-gap routes (docs/research.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile

from mongars.auth.models import User
from mongars.deps import CurrentUser, RuntimeDep
from mongars.errors import FeatureDisabled, Forbidden
from mongars.rate_limits import UploadLimit
from mongars.research.rag import rag_context
from mongars.research.schemas import (
    CollectionCreate,
    CollectionOut,
    DocumentOut,
    DocumentPage,
    GapPage,
    IngestOut,
    Passage,
    RagContextRequest,
    RagContextResponse,
    SearchRequest,
    SearchResponse,
)
from mongars.research.service import Actor, DocumentService

router = APIRouter(prefix="/api/v1", tags=["documents"])


def get_documents(runtime: RuntimeDep) -> DocumentService:
    if runtime.documents is None:
        raise FeatureDisabled("documents are off (MONGARS_RESEARCH__DOCUMENTS=false)")
    return runtime.documents.service


DocumentsDep = Annotated[DocumentService, Depends(get_documents)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # INTEGER on PostgreSQL
Cursor = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


def _actor(user: User) -> Actor:
    return Actor(user.id, user.is_admin)


@router.get("/collections", response_model=list[CollectionOut])
async def list_collections(user: CurrentUser, docs: DocumentsDep) -> list[CollectionOut]:
    """Your collections and the shared ones, with document and chunk counts."""
    return await docs.collections(_actor(user))


@router.post("/collections", response_model=CollectionOut, status_code=201)
async def create_collection(
    body: CollectionCreate, user: CurrentUser, docs: DocumentsDep
) -> CollectionOut:
    return await docs.create_collection(_actor(user), body.name, body.shared, body.description)


@router.delete("/collections/{collection_id}", status_code=204)
async def delete_collection(
    collection_id: RowId, user: CurrentUser, docs: DocumentsDep
) -> Response:
    await docs.delete_collection(_actor(user), collection_id)
    return Response(status_code=204)


@router.post(
    "/documents",
    response_model=IngestOut,
    status_code=201,
    dependencies=[UploadLimit],
    responses={200: {"model": IngestOut, "description": "Unchanged, or an older version replaced"}},
)
async def upload_document(
    user: CurrentUser,
    docs: DocumentsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="PDF, Markdown, HTML, text or source file")],
    collection: Annotated[str, Form(pattern=r"^[\w][\w./@+ -]{0,99}$")] = "default",
    shared: Annotated[bool, Form()] = False,
    path: Annotated[str | None, Form(max_length=1024)] = None,
) -> IngestOut:
    """Ingest one file (201 created; 200 when the same bytes were already there, or when
    a changed file replaced its older version)."""
    data = await file.read()
    name = path or file.filename or "upload"
    result = await docs.ingest(
        _actor(user), collection, name, data, content_type=file.content_type, shared=shared
    )
    if result.status != "created":
        response.status_code = 200
    return result


@router.get("/documents", response_model=DocumentPage)
async def list_documents(
    user: CurrentUser,
    docs: DocumentsDep,
    collection: str | None = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DocumentPage:
    return await docs.documents(_actor(user), collection, cursor, limit)


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_document(document_id: RowId, user: CurrentUser, docs: DocumentsDep) -> DocumentOut:
    return await docs.document(_actor(user), document_id)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: RowId, user: CurrentUser, docs: DocumentsDep) -> Response:
    await docs.delete_document(_actor(user), document_id)
    return Response(status_code=204)


@router.post("/documents/search", response_model=SearchResponse)
async def search_documents(
    body: SearchRequest, user: CurrentUser, docs: DocumentsDep
) -> SearchResponse:
    hits = await docs.search.search(user.id, body.query, body.k, body.collections)
    return SearchResponse(
        query=body.query,
        passages=[
            Passage(
                chunk_id=h.row.id,
                document_id=h.row.document_id,
                collection=h.row.collection,
                path=h.row.path,
                title=h.row.title,
                section=h.row.section,
                page=h.row.page,
                url=h.row.url,
                text=h.row.text,
                score=h.score,
                dense=h.dense,
                lexical=h.lexical,
            )
            for h in hits
        ],
    )


@router.post("/review/rag-context", response_model=RagContextResponse)
async def review_rag_context(
    body: RagContextRequest, user: CurrentUser, runtime: RuntimeDep
) -> RagContextResponse:
    """References from monGARS's own document index (a repository is a collection)."""
    if not runtime.settings.research.rag_enabled or runtime.documents is None:
        return RagContextResponse(enabled=False, focus_areas=[], references=[])
    return await rag_context(runtime.documents.service, user.id, body)


@router.get("/research/gaps", response_model=GapPage)
async def knowledge_gaps(
    user: CurrentUser,
    docs: DocumentsDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    all_users: Annotated[bool, Query(alias="all", description="admins: everyone's")] = False,
) -> GapPage:
    """Questions nothing covered (and what research did about them), newest first."""
    if all_users and not user.is_admin:
        raise Forbidden("only admins can list everyone's knowledge gaps")
    return await docs.gaps(None if all_users else user.id, cursor, limit)
