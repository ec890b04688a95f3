"""Console page for the peer mesh (admins): this node, the pairing requests waiting for a
decision (approve / reject with a note), every peer with its health, last seen time,
latency, load and reputation (revoke; restore a quarantined one), and forms to create
an invite and to join another node's. The mesh does the work and the audit
(docs/peers.md); a refused action (a bad invite, an unreachable peer: 422, 502...) comes
back as an error on the page, with its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from mongars.auth.models import User
from mongars.deps import RuntimeDep
from mongars.errors import DomainError, FeatureDisabled, InvalidInput
from mongars.peers.service import PeerMesh
from mongars.web.render import HtmlRoute, redirect, render
from mongars.web.session import CsrfChecked, WebAdmin

router = APIRouter(prefix="/admin/peers", route_class=HtmlRoute, include_in_schema=False)

NodeId = Annotated[str, Path(pattern=r"^[a-z2-7]{26}$")]
Note = Annotated[str, Form(max_length=1000)]
InviteText = Annotated[str, Form(max_length=8192)]
SameOwner = Annotated[bool, Form()]
# Minutes an invite stays valid; blank: MONGARS_PEERS__INVITE_TTL_S.
TtlMinutes = Annotated[str, Form(max_length=32)]
MAX_TTL_MIN = 7 * 24 * 60
OFF = "Peers are off on this server: no peer route answers and no telemetry leaves it."
HOW_TO = (
    "Set MONGARS_PEERS__ENABLED=true (and MONGARS_PUBLIC_URL to the address other nodes "
    "reach this one at) and restart the server."
)
PAGE = "/admin/peers"


def get_mesh(runtime: RuntimeDep) -> PeerMesh:
    if runtime.peers is None:
        raise FeatureDisabled(f"{OFF} {HOW_TO}")
    return runtime.peers


MeshDep = Annotated[PeerMesh, Depends(get_mesh)]


async def _page_context(request: Request, mesh: PeerMesh) -> dict[str, Any]:
    described = [mesh.describe(p) for p in await mesh.peers()]
    invite_ttl_s = request.app.state.runtime.settings.peers.invite_ttl_s
    return {
        "node": mesh.node(),
        "own": mesh.telemetry(),
        "requests": [p for p in described if p.state == "requested"],
        "peers": [p for p in described if p.state != "requested"],
        "invite_ttl_min": invite_ttl_s / 60,
        "now": datetime.now(UTC),
    }


async def _page(
    request: Request, user: User, mesh: PeerMesh, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    context = await _page_context(request, mesh)
    context.update(user=user, **extra)
    return render(request, "admin_peers.html", context, status_code=status_code)


async def _act(
    request: Request,
    user: User,
    mesh: PeerMesh,
    action: Callable[[], Awaitable[Any]],
    done: Callable[[Any], str],
    **kept: Any,
) -> Response:
    """Do ``action``; back to the page with ``done(result)`` as the flash, or the page
    with the mesh's refusal shown on it (and its status: 422, 409, 404, 502...);
    ``kept`` refills the form that was sent."""
    try:
        result = await action()
    except DomainError as exc:
        return await _page(request, user, mesh, exc.status, error=exc.detail, **kept)
    return redirect(PAGE, flash=done(result))


def _ttl_s(minutes: str) -> float | None:
    """Minutes from the form, in seconds; blank: the server's default."""
    text = minutes.strip()
    if not text:
        return None  # MONGARS_PEERS__INVITE_TTL_S
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"validity {text!r} is not a number of minutes") from None
    if not 0 < value <= MAX_TTL_MIN:
        raise InvalidInput(f"an invite is valid for more than 0 and at most {MAX_TTL_MIN} minutes")
    return value * 60


@router.get("")
async def peers_page(request: Request, user: WebAdmin, runtime: RuntimeDep) -> HTMLResponse:
    if runtime.peers is None:
        return render(request, "admin_peers.html", {"user": user, "off": OFF, "how_to": HOW_TO})
    return await _page(request, user, runtime.peers)


@router.post("/invite", dependencies=[CsrfChecked])
async def create_invite(
    request: Request,
    user: WebAdmin,
    mesh: MeshDep,
    same_owner: SameOwner = False,
    ttl_min: TtlMinutes = "",
) -> Response:
    """The invite is shown on this answer only (its secret is stored hashed)."""
    try:
        ttl_s = _ttl_s(ttl_min)
        text, expires = await mesh.create_invite(
            user.username, same_owner, ttl_s, mesh.own_fingerprint()
        )
    except DomainError as exc:
        return await _page(request, user, mesh, exc.status, error=exc.detail)
    invite = {"text": text, "expires_at": expires, "same_owner": same_owner}
    return await _page(request, user, mesh, invite=invite)


@router.post("/join", dependencies=[CsrfChecked])
async def join(
    request: Request,
    user: WebAdmin,
    mesh: MeshDep,
    invite: InviteText = "",
    same_owner: SameOwner = False,
) -> Response:
    def done(peer: Any) -> str:
        return f"Asked node {peer.node_id} to pair: {peer.state} until its admin approves."

    return await _act(
        request,
        user,
        mesh,
        lambda: mesh.join(user.username, invite, same_owner),
        done,
        join_text=invite,
        join_same_owner=same_owner,
    )


@router.post("/{node_id}/approve", dependencies=[CsrfChecked])
async def approve(
    request: Request, user: WebAdmin, mesh: MeshDep, node_id: NodeId, note: Note = ""
) -> Response:
    return await _act(
        request,
        user,
        mesh,
        lambda: mesh.decide(user.username, node_id, True, note),
        lambda peer: f"Node {node_id} approved: {peer.state}.",
    )


@router.post("/{node_id}/reject", dependencies=[CsrfChecked])
async def reject(
    request: Request, user: WebAdmin, mesh: MeshDep, node_id: NodeId, note: Note = ""
) -> Response:
    return await _act(
        request,
        user,
        mesh,
        lambda: mesh.decide(user.username, node_id, False, note),
        lambda peer: f"Node {node_id} rejected.",
    )


@router.post("/{node_id}/revoke", dependencies=[CsrfChecked])
async def revoke(request: Request, user: WebAdmin, mesh: MeshDep, node_id: NodeId) -> Response:
    return await _act(
        request,
        user,
        mesh,
        lambda: mesh.revoke(user.username, node_id),
        lambda peer: f"Node {node_id} revoked: its requests are refused from now on.",
    )


@router.post("/{node_id}/restore", dependencies=[CsrfChecked])
async def restore(
    request: Request, user: WebAdmin, mesh: MeshDep, node_id: NodeId, note: Note = ""
) -> Response:
    return await _act(
        request,
        user,
        mesh,
        lambda: mesh.restore(user.username, node_id, note),
        lambda peer: f"Node {node_id} restored: {peer.state} again.",
    )
