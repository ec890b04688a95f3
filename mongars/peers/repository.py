"""All SQL of the peer mesh."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mongars.auth.models import AuditEntry
from mongars.peers.models import Peer, PeerInvite, PeerMessage, PeerNonce


class PeerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.session.add(AuditEntry(actor=actor[:64], action=action, target=target, detail=detail))
        await self.session.flush()

    # -- peers -------------------------------------------------------------------

    async def get(self, node_id: str, lock: bool = False) -> Peer | None:
        return await self.session.get(Peer, node_id, with_for_update=lock)

    async def add(self, peer: Peer) -> Peer:
        self.session.add(peer)
        await self.session.flush()
        return peer

    async def all(self, states: tuple[str, ...] | None = None) -> list[Peer]:
        query = select(Peer).order_by(Peer.created_at, Peer.node_id)
        if states:
            query = query.where(Peer.state.in_(states))
        return list((await self.session.execute(query)).scalars())

    # -- invites -----------------------------------------------------------------

    async def add_invite(self, invite: PeerInvite) -> PeerInvite:
        self.session.add(invite)
        await self.session.flush()
        return invite

    async def invite_by_secret(self, secret_sha256: str) -> PeerInvite | None:
        query = select(PeerInvite).where(PeerInvite.secret_sha256 == secret_sha256)
        return (await self.session.execute(query.with_for_update())).scalar()

    async def use_invite(self, invite_id: int, node_id: str, now: datetime) -> bool:
        """Mark an unused, unexpired invite used; False when another request won."""
        result = await self.session.execute(
            update(PeerInvite)
            .where(
                PeerInvite.id == invite_id,
                PeerInvite.used_at.is_(None),
                PeerInvite.expires_at > now,
            )
            .values(used_at=now, used_by=node_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- nonces ------------------------------------------------------------------

    async def remember_nonce(self, nonce: str, kid: str, expires_at: datetime) -> bool:
        """Record a nonce; False if it was seen before (a replay)."""
        try:
            async with self.session.begin_nested():
                self.session.add(PeerNonce(nonce=nonce, kid=kid, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    async def forget_nonces(self, now: datetime) -> int:
        result = await self.session.execute(delete(PeerNonce).where(PeerNonce.expires_at < now))
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- messages ----------------------------------------------------------------

    async def add_message(self, message: PeerMessage) -> PeerMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def messages(self, limit: int, before: int | None) -> list[PeerMessage]:
        query = select(PeerMessage).order_by(PeerMessage.id.desc()).limit(limit)
        if before is not None:
            query = query.where(PeerMessage.id < before)
        return list((await self.session.execute(query)).scalars())
