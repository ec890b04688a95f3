"""`mongars peers ...`: pairing from the command line (docs/peers.md).

Works on this node's database and keys directly, like the API (migrations applied
first); joining and approving talk to the other node over HTTP(S), signed with this
node's key. Every action is audited as ``cli:<OS user>``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mongars.errors import DomainError
from mongars.secrets.cli import load_settings

if TYPE_CHECKING:
    from mongars.peers.service import PeerMesh

peers_app = typer.Typer(
    help="Paired monGARS nodes: invite, join, approve, list, revoke (docs/peers.md).",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")
NodeId = Annotated[str, typer.Argument(help="The other node's id (26 characters).")]


def _actor() -> str:
    from mongars.training.commands import cli_actor

    return cli_actor()


def _with_mesh(fn: Callable[[PeerMesh], Awaitable[T]]) -> T:
    from mongars.db import migrate
    from mongars.db.engine import create_engine, create_session_factory
    from mongars.peers.identity import NodeIdentity
    from mongars.peers.service import PeerMesh

    settings = load_settings()
    if not settings.peers.enabled:
        console.print("[red]error:[/red] peers are off: set MONGARS_PEERS__ENABLED=true")
        raise typer.Exit(1)
    migrate.upgrade(settings.resolved_database_url)

    async def go() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            identity = NodeIdentity.load_or_create(settings.data_dir)
            return await fn(PeerMesh(create_session_factory(engine), settings, identity))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
        raise typer.Exit(1) from None


@peers_app.command("invite")
def invite(
    same_owner: Annotated[
        bool, typer.Option("--same-owner", help="The joiner may receive user data and adapters.")
    ] = False,
    ttl: Annotated[float | None, typer.Option(help="Seconds the invite stays valid.")] = None,
) -> None:
    """Print a single-use invite for another node's admin (`mongars peers join` there)."""

    async def go(mesh: PeerMesh) -> None:
        text, expires = await mesh.create_invite(_actor(), same_owner, ttl, mesh.own_fingerprint())
        console.print(text, soft_wrap=True, highlight=False)
        console.print(f"[dim]valid until {expires:%Y-%m-%d %H:%M:%S} UTC, once[/dim]")

    _with_mesh(go)


@peers_app.command("join")
def join(
    invite_text: Annotated[str, typer.Argument(metavar="INVITE", help="The invite (mgi1....).")],
    same_owner: Annotated[bool, typer.Option("--same-owner")] = False,
) -> None:
    """Ask the node that made the invite to pair; pending until its admin approves."""

    async def go(mesh: PeerMesh) -> None:
        peer = await mesh.join(_actor(), invite_text, same_owner)
        console.print(f"{peer.node_id} {peer.state} ({peer.url})", highlight=False)

    _with_mesh(go)


@peers_app.command("approve")
def approve(node_id: NodeId, note: Annotated[str, typer.Option("--note")] = "") -> None:
    """Approve a node's pairing request (it is told at once)."""

    async def go(mesh: PeerMesh) -> None:
        peer = await mesh.decide(_actor(), node_id, True, note)
        console.print(f"{peer.node_id} {peer.state}", highlight=False)

    _with_mesh(go)


@peers_app.command("reject")
def reject(node_id: NodeId, note: Annotated[str, typer.Option("--note")] = "") -> None:
    """Reject a node's pairing request."""

    async def go(mesh: PeerMesh) -> None:
        peer = await mesh.decide(_actor(), node_id, False, note)
        console.print(f"{peer.node_id} {peer.state}", highlight=False)

    _with_mesh(go)


@peers_app.command("revoke")
def revoke(node_id: NodeId) -> None:
    """End a pairing now (the peer is told if it can be reached)."""

    async def go(mesh: PeerMesh) -> None:
        peer = await mesh.revoke(_actor(), node_id)
        console.print(f"{peer.node_id} {peer.state}", highlight=False)

    _with_mesh(go)


@peers_app.command("list")
def list_peers() -> None:
    """Every known node: state, URL, last seen, latency, reputation."""

    async def go(mesh: PeerMesh) -> None:
        console.print(f"this node: {mesh.identity.node_id} ({mesh.public_url})", highlight=False)
        table = Table("node", "state", "url", "last seen", "latency", "reputation", "owner")
        for peer in await mesh.peers():
            out = mesh.describe(peer)
            table.add_row(
                out.node_id,
                out.state,
                out.url,
                f"{out.last_seen_at:%H:%M:%S}" if out.last_seen_at else "–",
                f"{out.latency_ms:.1f} ms" if out.latency_ms is not None else "–",
                f"{out.reputation:.2f}",
                "same" if out.same_owner else "other",
            )
        Console(width=max(console.width, 180)).print(table)  # whole node ids

    _with_mesh(go)
