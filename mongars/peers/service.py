"""The peer mesh of one running node: pairing, signed inbound requests, telemetry
exchange and messages (docs/peers.md)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mongars import __version__
from mongars.db.engine import unit_of_work
from mongars.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from mongars.peers import signing
from mongars.peers.errors import PeerFailed
from mongars.peers.identity import NodeIdentity, b64, key_id, unb64, verify_endorsement
from mongars.peers.models import Peer, PeerInvite, PeerMessage
from mongars.peers.repository import PeerRepository
from mongars.peers.schemas import (
    Invite,
    NodeOut,
    PairRequest,
    PeerMessageOut,
    PeerOut,
    RotateKey,
    Telemetry,
)
from mongars.peers.sealing import open_sealed, seal
from mongars.peers.transport import PeerTransport, PeerUnreachable, check_url, fingerprint_file
from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars.peers.delegation import Delegator
    from mongars.peers.replication import Replication
    from mongars.peers.work import WorkServer

log = logging.getLogger(__name__)

INVITE_PREFIX = "mgi1."
EWMA = 0.2  # weight of the newest observation in the reputation averages
BAN_BASE_S, BAN_MAX_S = 5.0, 3600.0
# The generic answer to any refused peer request: it says nothing of why (no oracle).
REFUSED = "peer request refused"


def _now() -> datetime:
    return datetime.now(UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PeerMesh:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        identity: NodeIdentity,
        load: Callable[[], Telemetry] | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.cfg = settings.peers
        self.identity = identity
        self.transport = PeerTransport(identity, self.cfg)
        self._load = load
        self._task: asyncio.Task[None] | None = None
        self._started = _now()
        self._energy_wh, self._energy_read = 0.0, float("-inf")  # background jobs, 24 h
        self.work_sent: dict[str, dict[str, int]] = {}  # node id -> kind -> count
        self.work: WorkServer | None = None  # work this node does for peers
        self.delegator: Delegator | None = None  # work this node hands to peers
        self.replication: Replication | None = None  # adapters to and from peers

    # -- this node ---------------------------------------------------------------

    @property
    def public_url(self) -> str:
        url = self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        return url.rstrip("/")

    def node(self) -> NodeOut:
        return NodeOut(
            node_id=self.identity.node_id,
            url=self.public_url,
            kid=self.identity.kid,
            signing_key=b64(self.identity.signing_public),
            encryption_key=b64(self.identity.encryption_public),
            peers_enabled=self.cfg.enabled,
        )

    def own_fingerprint(self) -> str | None:
        """This node's certificate fingerprint, which peers pin (None: no TLS here)."""
        certfile = self.cfg.tls_certfile
        return fingerprint_file(certfile) if certfile else None

    def telemetry(self) -> Telemetry:
        snapshot = self._load() if self._load else Telemetry()
        return snapshot.model_copy(
            update={
                "scheduler_id": self.identity.node_id,
                "source": self.public_url,
                "observed_at": _now(),
                "version": __version__,
                "worker_uptime_seconds": (_now() - self._started).total_seconds(),
                "cpu_pressure": os.getloadavg()[0] / max(1, os.cpu_count() or 1),
                "accepts": list(self.cfg.accept),
                "energy_wh_24h": self._energy_wh,
            }
        )

    # -- pairing -----------------------------------------------------------------

    async def create_invite(
        self, actor: str, same_owner: bool, ttl_s: float | None, tls_fingerprint: str | None
    ) -> tuple[str, datetime]:
        secret = secrets.token_urlsafe(32)
        expires = _now() + timedelta(seconds=ttl_s or self.cfg.invite_ttl_s)
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            invite = await repo.add_invite(
                PeerInvite(
                    secret_sha256=_sha(secret),
                    created_by=actor,
                    same_owner=same_owner,
                    expires_at=expires,
                )
            )
            await repo.audit(actor, "peer.invite", f"invite:{invite.id}", f"expires {expires}")
        body = {
            "v": 1,
            "url": self.public_url,
            "node_id": self.identity.node_id,
            "sign_key": b64(self.identity.signing_public),
            "enc_key": b64(self.identity.encryption_public),
            "tls_fingerprint": tls_fingerprint,
            "secret": secret,
            "expires_at": int(expires.timestamp()),
        }
        return INVITE_PREFIX + b64(json.dumps(body, separators=(",", ":")).encode()), expires

    @staticmethod
    def decode_invite(text: str) -> dict[str, Any]:
        text = text.strip()
        if not text.startswith(INVITE_PREFIX):
            raise InvalidInput("not a monGARS invite (it starts with 'mgi1.')")
        try:
            invite = Invite.model_validate_json(unb64(text[len(INVITE_PREFIX) :]))
            if len(unb64(invite.sign_key)) != 32 or len(unb64(invite.enc_key)) != 32:
                raise ValueError("keys are 32 bytes")
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise InvalidInput("the invite is damaged: copy it again, whole") from exc
        return invite.model_dump()

    async def join(self, actor: str, invite_text: str, same_owner: bool) -> Peer:
        """Ask the inviting node to pair with this one; it stays ``pending`` here
        until an admin of that node approves."""
        invite = self.decode_invite(invite_text)
        if invite["expires_at"] < _now().timestamp():
            raise InvalidInput("the invite has expired: ask for a new one")
        if invite["node_id"] == self.identity.node_id:
            raise InvalidInput("this invite is this node's own")
        try:
            url = check_url(str(invite["url"]), self.cfg.allow_http)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        body = PairRequest(
            secret=invite["secret"],
            node_id=self.identity.node_id,
            url=self.public_url,
            sign_key=b64(self.identity.signing_public),
            enc_key=b64(self.identity.encryption_public),
            tls_fingerprint=self.own_fingerprint(),
        )
        pin = invite.get("tls_fingerprint")
        try:
            await self.transport.send(
                url, invite["node_id"], "/api/v1/peer/mesh/pair", body.model_dump(), pin
            )
        except PeerUnreachable as exc:
            raise PeerFailed(f"the inviting node refused or did not answer: {exc}") from exc
        sign_key = unb64(invite["sign_key"])
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(invite["node_id"], lock=True)
            if peer is None:
                peer = Peer(node_id=invite["node_id"], created_at=_now())
            peer.url, peer.state = url, "pending"
            peer.sign_key, peer.enc_key = invite["sign_key"], invite["enc_key"]
            peer.kid = key_id(invite["node_id"], sign_key)
            peer.tls_fingerprint, peer.same_owner = pin, same_owner
            peer.old_keys, peer.ended_at = [], None
            await repo.add(peer)
            await repo.audit(actor, "peer.join", f"peer:{peer.node_id}", url)
        return peer

    async def receive_pair_request(self, method: str, url: str, headers: Any, body: bytes) -> None:
        """A node that holds one of our invites asks to pair (signed by its own key)."""
        try:
            request = PairRequest.model_validate_json(body)
            sign_key = unb64(request.sign_key)
            signing.verify(
                method,
                url,
                headers,
                body,
                sign_key,
                self.identity.node_id,
                timedelta(seconds=self.cfg.clock_skew_s),
            )
            check_url(request.url, self.cfg.allow_http)
        except (ValueError, signing.BadSignature) as exc:
            log.info("pairing request refused: %s", exc)
            raise NotAuthenticated(REFUSED) from exc
        kid = key_id(request.node_id, sign_key)
        if signing.signing_key_id({k.lower(): v for k, v in headers}) != kid:
            raise NotAuthenticated(REFUSED)
        now = _now()
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            invite = await repo.invite_by_secret(_sha(request.secret))
            if invite is None or not await repo.use_invite(invite.id, request.node_id, now):
                log.info("pairing request refused: unknown, used or expired invite")
                raise NotAuthenticated(REFUSED)
            peer = await repo.get(request.node_id, lock=True)
            if peer is not None and peer.state in ("paired", "quarantined"):
                raise Conflict("already paired")
            peer = peer or Peer(node_id=request.node_id, created_at=now)
            peer.url, peer.state = request.url.rstrip("/"), "requested"
            peer.sign_key, peer.enc_key, peer.kid = request.sign_key, request.enc_key, kid
            peer.tls_fingerprint = request.tls_fingerprint
            peer.same_owner, peer.old_keys, peer.ended_at = invite.same_owner, [], None
            await repo.add(peer)
            await repo.audit(
                f"peer:{request.node_id}", "peer.request", f"peer:{peer.node_id}", peer.url
            )

    async def decide(self, actor: str, node_id: str, approve: bool, note: str) -> Peer:
        """Approve or reject a pairing request; the requester is told either way."""
        async with unit_of_work(self.sessions) as session:
            peer = await PeerRepository(session).get(node_id)
            if peer is None:
                raise NotFound("no such peer")
            if peer.state != "requested":
                raise Conflict(f"the peer is {peer.state}, not waiting for a decision")
        decision = "approved" if approve else "rejected"
        try:
            await self._send(peer, "/api/v1/peer/mesh/answer", {"decision": decision})
        except PeerUnreachable as exc:
            if approve:  # pairing needs both sides: nothing changes until it can be told
                raise PeerFailed(f"the requesting node did not take the approval: {exc}") from exc
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            current = await repo.get(node_id, lock=True)
            assert current is not None
            current.state = "paired" if approve else "rejected"
            current.decided_by, current.note = actor, note
            if approve:
                current.paired_at = _now()
            else:
                current.ended_at = _now()
            await repo.audit(actor, f"peer.{decision[:-1]}", f"peer:{node_id}", note)
            return current

    async def revoke(self, actor: str, node_id: str) -> Peer:
        """End a pairing now, on this side; the peer is told if it can be reached."""
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id, lock=True)
            if peer is None:
                raise NotFound("no such peer")
            was = peer.state
            peer.state, peer.ended_at, peer.decided_by = "revoked", _now(), actor
            await repo.audit(actor, "peer.revoke", f"peer:{node_id}", f"was {was}")
        if was in ("paired", "pending", "quarantined"):
            with contextlib.suppress(PeerUnreachable):
                await self._send(peer, "/api/v1/peer/mesh/answer", {"decision": "revoked"})
        return peer

    async def receive_answer(self, peer: Peer, decision: str) -> None:
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            current = await repo.get(peer.node_id, lock=True)
            assert current is not None
            if decision == "approved" and current.state == "pending":
                current.state, current.paired_at = "paired", _now()
            elif decision == "rejected" and current.state == "pending":
                current.state, current.ended_at = "rejected", _now()
            elif decision == "revoked" and current.state != "revoked":
                current.state, current.ended_at = "revoked", _now()
            else:
                return
            await repo.audit(f"peer:{peer.node_id}", f"peer.{decision}", f"peer:{peer.node_id}")

    async def quarantine(self, node_id: str, reason: str) -> None:
        """A peer that failed a check: refused like a revoked one until an admin acts."""
        log.warning("peer %s quarantined: %s", node_id, reason)
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id, lock=True)
            if peer is None or peer.state != "paired":
                return
            peer.state, peer.note = "quarantined", reason[:1000]
            await repo.audit("policy", "peer.quarantine", f"peer:{node_id}", reason[:500])

    async def restore(self, actor: str, node_id: str, note: str) -> Peer:
        """An admin's decision that a quarantined peer is trusted again."""
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id, lock=True)
            if peer is None:
                raise NotFound("no such peer")
            if peer.state != "quarantined":
                raise Conflict(f"the peer is {peer.state}, not quarantined")
            peer.state, peer.note, peer.decided_by = "paired", note, actor
            peer.failures, peer.banned_until = 0, None
            await repo.audit(actor, "peer.restore", f"peer:{node_id}", note)
            session.expunge(peer)
            return peer

    def count_work(self, node_id: str, kind: str) -> None:
        counts = self.work_sent.setdefault(node_id, {})
        counts[kind] = counts.get(kind, 0) + 1

    def log_spot_check(self, node_id: str, passed: bool) -> None:
        log.info("spot check of %s: %s", node_id, "passed" if passed else "FAILED")

    # -- keys ----------------------------------------------------------------------

    async def rotate_keys(self, actor: str) -> dict[str, Any]:
        """A new signing key, endorsed by the old one and announced to every paired peer."""
        new_public, endorsement = self.identity.rotate(timedelta(seconds=self.cfg.key_grace_s))
        body = RotateKey(sign_key=b64(new_public), endorsement=b64(endorsement)).model_dump()
        told, missed = [], []
        for peer in await self.peers(("paired",)):
            try:
                await self._send(peer, "/api/v1/peer/mesh/rotate", body)
                told.append(peer.node_id)
            except PeerUnreachable:
                missed.append(peer.node_id)
        async with unit_of_work(self.sessions) as session:
            await PeerRepository(session).audit(actor, "peer.rotate_keys", self.identity.kid)
        return {"kid": self.identity.kid, "told": told, "missed": missed}

    async def receive_rotation(self, method: str, url: str, headers: Any, body: bytes) -> None:
        """A paired peer's new key: signed by the new key, endorsed by the current one."""
        try:
            request = RotateKey.model_validate_json(body)
            new_key = unb64(request.sign_key)
            kid = signing.signing_key_id({k.lower(): v for k, v in headers})
            node_id = kid.split(".", 1)[0]
        except (ValueError, signing.BadSignature) as exc:
            raise NotAuthenticated(REFUSED) from exc
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id, lock=True)
            if peer is None or peer.state != "paired":
                raise NotAuthenticated(REFUSED)
            old_key = unb64(peer.sign_key)
            if kid != key_id(node_id, new_key) or not verify_endorsement(
                old_key, node_id, new_key, unb64(request.endorsement)
            ):
                raise NotAuthenticated(REFUSED)
            await self._verify_with(repo, method, url, headers, body, new_key)
            expires = _now() + timedelta(seconds=self.cfg.key_grace_s)
            peer.old_keys = [
                k for k in peer.old_keys if datetime.fromisoformat(k["expires_at"]) > _now()
            ] + [{"kid": peer.kid, "key": peer.sign_key, "expires_at": expires.isoformat()}]
            peer.sign_key, peer.kid = request.sign_key, kid
            await repo.audit(f"peer:{node_id}", "peer.key_rotated", f"peer:{node_id}", kid)

    # -- inbound signed requests -------------------------------------------------------

    async def _verify_with(
        self, repo: PeerRepository, method: str, url: str, headers: Any, body: bytes, key: bytes
    ) -> None:
        try:
            verified = signing.verify(
                method,
                url,
                headers,
                body,
                key,
                self.identity.node_id,
                timedelta(seconds=self.cfg.clock_skew_s),
            )
        except signing.BadSignature as exc:
            log.info("peer request refused: %s", exc)
            raise NotAuthenticated(REFUSED) from exc
        if not await repo.remember_nonce(verified.nonce, verified.kid, verified.expires_at):
            log.info("peer request refused: replayed nonce from %s", verified.kid)
            raise NotAuthenticated(REFUSED)

    async def authenticate(
        self, method: str, url: str, headers: Any, body: bytes, states: tuple[str, ...]
    ) -> Peer:
        """The peer that signed this request, if it is known, in one of ``states``, and
        everything checks (signature, digest, time, destination, nonce); else 401."""
        try:
            kid = signing.signing_key_id({k.lower(): v for k, v in headers})
        except signing.BadSignature as exc:
            raise NotAuthenticated(REFUSED) from exc
        node_id = kid.split(".", 1)[0]
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id)
            key = None
            if peer is not None and peer.state in states:
                if peer.kid == kid:
                    key = peer.sign_key
                for old in peer.old_keys:
                    if old["kid"] == kid and datetime.fromisoformat(old["expires_at"]) > _now():
                        key = old["key"]
            if peer is None or key is None:
                log.info("peer request refused: unknown or revoked key %s", kid)
                raise NotAuthenticated(REFUSED)
            await self._verify_with(repo, method, url, headers, body, unb64(key))
            peer.last_seen_at = _now()
            if secrets.randbelow(50) == 0:
                await repo.forget_nonces(_now())  # now and then: old nonces go
            await session.flush()  # last seen is written before the row is detached
            session.expunge(peer)
            return peer

    # -- telemetry -----------------------------------------------------------------

    async def receive_telemetry(self, peer: Peer, report: Telemetry) -> None:
        async with unit_of_work(self.sessions) as session:
            current = await PeerRepository(session).get(peer.node_id, lock=True)
            if current is not None:
                current.telemetry = report.model_dump(mode="json")
                current.last_seen_at = _now()

    async def _refresh_energy(self) -> None:
        """Energy the background jobs spent in 24 h (job runs), read once a minute."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._energy_read < 60:
            return
        from mongars.evolution.repository import EvolutionRepository

        async with unit_of_work(self.sessions) as session:
            spent = await EvolutionRepository(session).job_energy(_now() - timedelta(hours=24))
        self._energy_wh = round(sum(float(v["energy_wh"]) for v in spent.values()), 6)
        self._energy_read = loop.time()

    async def exchange_once(self) -> dict[str, bool]:
        """Send this node's telemetry to every paired peer; keep their answers' figures."""
        await self._refresh_energy()
        report = self.telemetry().model_dump(mode="json")
        results: dict[str, bool] = {}
        for peer in await self.peers(("paired",)):
            banned = peer.banned_until is not None and peer.banned_until > _now()
            if banned and secrets.randbelow(10) != 0:  # now and then, explore a banned peer
                continue
            try:
                answer, latency = await self._send(peer, "/api/v1/peer/mesh/telemetry", report)
                theirs = Telemetry.model_validate(answer)
            except (PeerUnreachable, ValueError) as exc:
                log.info("telemetry to %s failed: %s", peer.node_id, exc)
                await self.record_outcome(peer.node_id, False, None)
                results[peer.node_id] = False
                continue
            await self.record_outcome(peer.node_id, True, latency, theirs)
            results[peer.node_id] = True
        return results

    async def record_outcome(
        self, node_id: str, ok: bool, latency_ms: float | None, report: Telemetry | None = None
    ) -> None:
        """Update a peer's reputation: EWMA success and latency; failures ban it for an
        exponentially growing time (5 s, 10 s, ... up to an hour)."""
        async with unit_of_work(self.sessions) as session:
            peer = await PeerRepository(session).get(node_id, lock=True)
            if peer is None:
                return
            peer.success_ewma = (1 - EWMA) * peer.success_ewma + EWMA * (1.0 if ok else 0.0)
            if ok:
                peer.failures, peer.banned_until = 0, None
                peer.last_seen_at = _now()
                if latency_ms is not None:
                    previous = peer.latency_ms if peer.latency_ms is not None else latency_ms
                    peer.latency_ms = (1 - EWMA) * previous + EWMA * latency_ms
                if report is not None:
                    peer.telemetry = report.model_dump(mode="json")
            else:
                peer.failures += 1
                ban = min(BAN_MAX_S, BAN_BASE_S * 2 ** (peer.failures - 1))
                peer.banned_until = _now() + timedelta(seconds=ban)

    async def _run(self) -> None:
        while True:
            try:
                await self.exchange_once()
            except Exception:  # the loop outlives one bad round; logged with its cause
                log.exception("peer telemetry round failed")
            await asyncio.sleep(self.cfg.telemetry_interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="peer-telemetry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- messages ------------------------------------------------------------------

    async def send_message(self, actor: str, node_id: str, payload: dict[str, Any]) -> None:
        async with unit_of_work(self.sessions) as session:
            repo = PeerRepository(session)
            peer = await repo.get(node_id)
            if peer is None or peer.state != "paired":
                raise NotFound("no paired peer with this id")
            await repo.audit(actor, "peer.message", f"peer:{node_id}")
        sealed = seal(unb64(peer.enc_key), peer.node_id, payload)
        try:
            await self._send(peer, "/api/v1/peer/message", {"payload": sealed})
        except PeerUnreachable as exc:
            raise PeerFailed(f"the peer did not take the message: {exc}") from exc

    async def receive_message(self, peer: Peer, sealed: str) -> None:
        try:
            payload = open_sealed(self.identity, sealed)
        except (InvalidTag, ValueError, TypeError, UnicodeDecodeError) as exc:
            log.info("message from %s refused: %s", peer.node_id, type(exc).__name__)
            raise NotAuthenticated(REFUSED) from exc
        async with unit_of_work(self.sessions) as session:
            await PeerRepository(session).add_message(
                PeerMessage(node_id=peer.node_id, payload=payload)
            )

    async def messages(self, limit: int, before: int | None) -> list[PeerMessageOut]:
        async with unit_of_work(self.sessions) as session:
            rows = await PeerRepository(session).messages(limit, before)
            return [
                PeerMessageOut(
                    id=m.id, node_id=m.node_id, payload=m.payload, received_at=m.received_at
                )
                for m in rows
            ]

    # -- reading -------------------------------------------------------------------

    async def peers(self, states: tuple[str, ...] | None = None) -> list[Peer]:
        async with unit_of_work(self.sessions) as session:
            rows = await PeerRepository(session).all(states)
            for row in rows:
                session.expunge(row)
            return rows

    async def get(self, node_id: str) -> Peer:
        async with unit_of_work(self.sessions) as session:
            peer = await PeerRepository(session).get(node_id)
            if peer is None:
                raise NotFound("no such peer")
            session.expunge(peer)
            return peer

    def describe(self, peer: Peer) -> PeerOut:
        seen = peer.last_seen_at
        healthy = (
            peer.state == "paired"
            and seen is not None
            and (_now() - seen).total_seconds() < self.cfg.stale_after_s
        )
        load = peer.telemetry.get("load_factor") if peer.telemetry else None
        return PeerOut(
            node_id=peer.node_id,
            url=peer.url,
            state=peer.state,
            same_owner=peer.same_owner,
            kid=peer.kid,
            tls_fingerprint=peer.tls_fingerprint,
            last_seen_at=seen,
            latency_ms=peer.latency_ms,
            healthy=healthy,
            load=float(load) if isinstance(load, int | float) else None,
            reputation=round(peer.success_ewma, 4),
            failures=peer.failures,
            banned_until=peer.banned_until,
            telemetry=peer.telemetry or {},
            work_sent=dict(self.work_sent.get(peer.node_id, {})),
            created_at=peer.created_at,
            paired_at=peer.paired_at,
            note=peer.note,
        )

    async def _send(
        self, peer: Peer, path: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], float]:
        return await self.transport.send(
            peer.url, peer.node_id, path, payload, peer.tls_fingerprint
        )
