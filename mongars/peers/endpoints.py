"""Peer routes (docs/peers.md).

Admin routes pair, list, revoke and message peers; ``/api/v1/peer/mesh/*`` and
``/api/v1/peer/message`` are for paired nodes only: no bearer token, an RFC 9421
signature instead, and one generic 401 for every refusal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from mongars.deps import AdminUser, RuntimeDep
from mongars.errors import Conflict, FeatureDisabled, InvalidInput, NotFound
from mongars.peers.models import Peer
from mongars.peers.replication import Replication
from mongars.peers.schemas import (
    EncryptedMessage,
    FileOffset,
    InviteCreate,
    InviteOut,
    JoinRequest,
    NodeOut,
    PairAnswer,
    PeerDecision,
    PeerLoadSnapshot,
    PeerMessageOut,
    PeerOut,
    PeerRegistration,
    PeerState,
    PeerTelemetryEnvelope,
    PullOut,
    PullRequest,
    RegistrationOut,
    SendMessage,
    Telemetry,
    WorkItem,
)
from mongars.peers.service import PeerMesh

router = APIRouter(tags=["peers"])
NodeIdPath = Annotated[str, Path(pattern=r"^[a-z2-7]{26}$")]


def get_mesh(runtime: RuntimeDep) -> PeerMesh:
    if runtime.peers is None:
        raise FeatureDisabled("peers are off: set MONGARS_PEERS__ENABLED=true")
    return runtime.peers


def get_mesh_for_peers(runtime: RuntimeDep) -> PeerMesh:
    if runtime.peers is None:
        raise NotFound("Not Found")
    return runtime.peers


Mesh = Annotated[PeerMesh, Depends(get_mesh)]
PeerSide = Annotated[PeerMesh, Depends(get_mesh_for_peers)]


async def _signed(request: Request, mesh: PeerMesh, states: tuple[str, ...]) -> tuple[Peer, bytes]:
    body = await request.body()
    peer = await mesh.authenticate(
        request.method, str(request.url), request.headers.items(), body, states
    )
    return peer, body


# -- admin ---------------------------------------------------------------------------


@router.get("/api/v1/peer/node", response_model=NodeOut)
async def node(admin: AdminUser, mesh: Mesh) -> NodeOut:
    """This node's id, URL and public keys."""
    return mesh.node()


@router.post("/api/v1/peer/invites", response_model=InviteOut, status_code=201)
async def create_invite(admin: AdminUser, mesh: Mesh, body: InviteCreate) -> InviteOut:
    """A single-use invite for another node's admin: `POST /api/v1/peer/join` there."""
    pin = mesh.own_fingerprint()
    invite, expires = await mesh.create_invite(admin.username, body.same_owner, body.ttl_s, pin)
    return InviteOut(invite=invite, expires_at=expires)


@router.post("/api/v1/peer/join", response_model=PeerState)
async def join(admin: AdminUser, mesh: Mesh, body: JoinRequest) -> PeerState:
    """Ask the node that made the invite to pair; `pending` until its admin approves."""
    peer = await mesh.join(admin.username, body.invite, body.same_owner)
    return PeerState(node_id=peer.node_id, state=peer.state)


@router.get("/api/v1/peer/requests", response_model=list[PeerOut])
async def requests(admin: AdminUser, mesh: Mesh) -> list[PeerOut]:
    """Nodes that asked to pair with this one and wait for a decision."""
    return [mesh.describe(p) for p in await mesh.peers(("requested",))]


@router.post("/api/v1/peer/requests/{node_id}/approve", response_model=PeerState)
async def approve(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath, body: PeerDecision
) -> PeerState:
    peer = await mesh.decide(admin.username, node_id, True, body.note)
    return PeerState(node_id=peer.node_id, state=peer.state)


@router.post("/api/v1/peer/requests/{node_id}/reject", response_model=PeerState)
async def reject(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath, body: PeerDecision
) -> PeerState:
    peer = await mesh.decide(admin.username, node_id, False, body.note)
    return PeerState(node_id=peer.node_id, state=peer.state)


@router.get("/api/v1/peers", response_model=list[PeerOut])
async def list_peers(admin: AdminUser, mesh: Mesh) -> list[PeerOut]:
    """Every known node: state, URL, last seen, latency, load and reputation."""
    return [mesh.describe(p) for p in await mesh.peers()]


@router.get("/api/v1/peers/{node_id}", response_model=PeerOut)
async def get_peer(admin: AdminUser, mesh: Mesh, node_id: NodeIdPath) -> PeerOut:
    return mesh.describe(await mesh.get(node_id))


@router.delete("/api/v1/peers/{node_id}", response_model=PeerState)
async def revoke(admin: AdminUser, mesh: Mesh, node_id: NodeIdPath) -> PeerState:
    """Revoke a pairing: from now on this node refuses the peer's requests."""
    peer = await mesh.revoke(admin.username, node_id)
    return PeerState(node_id=peer.node_id, state=peer.state)


@router.post("/api/v1/peers/{node_id}/message", status_code=202)
async def send_message(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath, body: SendMessage
) -> dict[str, str]:
    """Send a JSON message, encrypted to the peer's key (HPKE) and signed."""
    await mesh.send_message(admin.username, node_id, body.payload)
    return {"status": "sent"}


@router.get("/api/v1/peer/messages", response_model=list[PeerMessageOut])
async def messages(
    admin: AdminUser,
    mesh: Mesh,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> list[PeerMessageOut]:
    """Messages paired peers sent here, decrypted, newest first (admins only)."""
    return await mesh.messages(limit, before)


@router.post("/api/v1/peers/{node_id}/restore", response_model=PeerState)
async def restore(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath, body: PeerDecision
) -> PeerState:
    """Trust a quarantined peer again (after a failed check: docs/peers.md)."""
    peer = await mesh.restore(admin.username, node_id, body.note)
    return PeerState(node_id=peer.node_id, state=peer.state)


@router.get("/api/v1/peers/{node_id}/adapters")
async def peer_adapters(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath
) -> list[dict[str, object]]:
    """The adapters a same-owner peer offers, each manifest's signature checked."""
    replication = _replication(mesh)
    manifests = await replication.remote(node_id)
    return [{**m, "installed": await replication.registry.has(m["adapter"])} for m in manifests]


@router.post("/api/v1/peers/{node_id}/adapters/pull", response_model=PullOut)
async def pull_adapters(
    admin: AdminUser, mesh: Mesh, node_id: NodeIdPath, body: PullRequest
) -> PullOut:
    """Replicate the peer's adapters (or one): verified, installed here as candidates
    that still need this node's approval (docs/adapters.md)."""
    result = await _replication(mesh).pull(admin.username, node_id, body.sha256)
    return PullOut.model_validate(result)


@router.post("/api/v1/peer/keys/rotate")
async def rotate_keys(admin: AdminUser, mesh: Mesh) -> dict[str, object]:
    """A new signing key, endorsed by the old one and announced to paired peers."""
    return await mesh.rotate_keys(admin.username)


# -- reference v1 routes (admin only; field names kept) ----------------------------------


@router.post("/api/v1/peer/register", response_model=RegistrationOut)
async def register(admin: AdminUser, mesh: Mesh, body: PeerRegistration) -> RegistrationOut:
    """Kept for old clients: a URL alone no longer makes a peer; it must be paired."""
    paired = await mesh.peers(("paired",))
    if any(p.url == body.url.rstrip("/") for p in paired):
        return RegistrationOut(status="already registered", count=len(paired))
    raise Conflict(
        "peers are paired, not registered: create an invite on that node "
        "(POST /api/v1/peer/invites) and join it here (POST /api/v1/peer/join)"
    )


@router.post("/api/v1/peer/unregister", response_model=RegistrationOut)
async def unregister(admin: AdminUser, mesh: Mesh, body: PeerRegistration) -> RegistrationOut:
    """Revoke the paired peer at this URL."""
    url = body.url.rstrip("/")
    matches = [p for p in await mesh.peers(("paired",)) if p.url == url]
    for peer in matches:
        await mesh.revoke(admin.username, peer.node_id)
    count = len(await mesh.peers(("paired",)))
    return RegistrationOut(status="unregistered" if matches else "not registered", count=count)


@router.get("/api/v1/peer/list", response_model=list[str])
async def peer_list(admin: AdminUser, mesh: Mesh) -> list[str]:
    """The URLs of paired peers."""
    return sorted(p.url for p in await mesh.peers(("paired",)))


@router.get("/api/v1/peer/load", response_model=PeerLoadSnapshot)
async def peer_load(admin: AdminUser, mesh: Mesh) -> PeerLoadSnapshot:
    """This node's load, as it reports it to peers."""
    return PeerLoadSnapshot.model_validate(mesh.telemetry().model_dump())


@router.post("/api/v1/peer/telemetry", status_code=202)
async def telemetry_ingest(admin: AdminUser, mesh: Mesh, report: Telemetry) -> dict[str, str]:
    """An admin's report for a paired peer (``scheduler_id`` = its node id)."""
    if not report.scheduler_id:
        raise InvalidInput("scheduler_id must name a paired peer's node id")
    peer = await mesh.get(report.scheduler_id)
    if peer.state != "paired":
        raise Conflict(f"the peer is {peer.state}")
    await mesh.receive_telemetry(peer, report)
    return {"status": "accepted"}


@router.get("/api/v1/peer/telemetry", response_model=PeerTelemetryEnvelope)
async def telemetry_snapshot(admin: AdminUser, mesh: Mesh) -> PeerTelemetryEnvelope:
    """This node's telemetry, then each paired peer's latest."""
    reports = [mesh.telemetry()]
    for peer in await mesh.peers(("paired",)):
        if peer.telemetry:
            reports.append(Telemetry.model_validate(peer.telemetry))
    return PeerTelemetryEnvelope(telemetry=reports)


# -- paired nodes only (signed) ----------------------------------------------------------


@router.post("/api/v1/peer/mesh/pair", status_code=202, include_in_schema=False)
async def mesh_pair(request: Request, mesh: PeerSide) -> dict[str, str]:
    body = await request.body()
    await mesh.receive_pair_request(request.method, str(request.url), request.headers.items(), body)
    return {"node_id": mesh.identity.node_id, "state": "requested"}


@router.post("/api/v1/peer/mesh/answer", include_in_schema=False)
async def mesh_answer(request: Request, mesh: PeerSide) -> dict[str, str]:
    peer, body = await _signed(request, mesh, ("pending", "paired", "quarantined", "requested"))
    answer = PairAnswer.model_validate_json(body)
    await mesh.receive_answer(peer, answer.decision)
    return {"status": "ok"}


@router.post("/api/v1/peer/mesh/rotate", include_in_schema=False)
async def mesh_rotate(request: Request, mesh: PeerSide) -> dict[str, str]:
    body = await request.body()
    await mesh.receive_rotation(request.method, str(request.url), request.headers.items(), body)
    return {"status": "ok"}


@router.post("/api/v1/peer/mesh/telemetry", include_in_schema=False)
async def mesh_telemetry(request: Request, mesh: PeerSide) -> dict[str, object]:
    peer, body = await _signed(request, mesh, ("paired",))
    await mesh.receive_telemetry(peer, Telemetry.model_validate_json(body))
    return mesh.telemetry().model_dump(mode="json")


@router.post("/api/v1/peer/mesh/work/embed", include_in_schema=False)
async def mesh_work_embed(request: Request, mesh: PeerSide) -> Response:
    peer, body = await _signed(request, mesh, ("paired",))
    item = WorkItem.model_validate_json(body)
    assert mesh.work is not None
    line = await mesh.work.embed(peer, item.key, item.sealed)
    return Response(line, media_type="application/x-ndjson")


@router.post("/api/v1/peer/mesh/work/chat", include_in_schema=False)
async def mesh_work_chat(request: Request, mesh: PeerSide) -> StreamingResponse:
    peer, body = await _signed(request, mesh, ("paired",))
    item = WorkItem.model_validate_json(body)
    assert mesh.work is not None
    lines = await mesh.work.chat(peer, item.key, item.sealed)
    return StreamingResponse(lines, media_type="application/x-ndjson")


def _replication(mesh: PeerMesh) -> Replication:
    if mesh.replication is None:  # pragma: no cover - built with the mesh
        raise FeatureDisabled("adapter replication is not running")
    return mesh.replication


@router.post("/api/v1/peer/mesh/adapters", include_in_schema=False)
async def mesh_adapters(request: Request, mesh: PeerSide) -> dict[str, object]:
    peer, _ = await _signed(request, mesh, ("paired",))
    return {"adapters": await _replication(mesh).manifests(peer)}


@router.post("/api/v1/peer/mesh/adapters/{sha256}/file", include_in_schema=False)
async def mesh_adapter_file(
    request: Request, mesh: PeerSide, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
) -> StreamingResponse:
    peer, body = await _signed(request, mesh, ("paired",))
    offset = FileOffset.model_validate_json(body).offset
    chunks, size = await _replication(mesh).file(peer, sha256, offset)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"X-Total-Size": str(size), "X-Offset": str(offset)},
    )


@router.post("/api/v1/peer/message", status_code=202)
async def peer_message(request: Request, mesh: PeerSide) -> dict[str, str]:
    """From a paired peer only (signed; the payload HPKE-encrypted to this node).
    Nothing decrypted is returned: admins read messages at GET /api/v1/peer/messages."""
    peer, body = await _signed(request, mesh, ("paired",))
    message = EncryptedMessage.model_validate_json(body)
    await mesh.receive_message(peer, message.payload)
    return {"status": "received"}
