"""Handing work to the least-loaded healthy peer when this node is busy
(``MONGARS_PEERS__DELEGATE``), with a local fallback and spot checks.

Choice: power of two choices. Two eligible peers are drawn at random and the one with
the lower load / reputation wins; it is used only if that figure is below this node's
own load. Eligible: paired, healthy (recent telemetry), not banned, taking this kind of
work, and paired as the same owner unless ``DELEGATE_TO_OTHER_OWNERS``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.peers.identity import unb64
from mongars.peers.sealing import open_sealed, seal
from mongars.peers.transport import PeerUnreachable
from mongars.peers.work import WorkRefused, check_line, decode_stream_item, params_dict

if TYPE_CHECKING:
    from mongars.peers.models import Peer
    from mongars.peers.service import PeerMesh

log = logging.getLogger(__name__)
EMBED_PATH, CHAT_PATH = "/api/v1/peer/mesh/work/embed", "/api/v1/peer/mesh/work/chat"
EMBED_AGREEMENT = 0.999  # cosine a re-run embedding must reach (same model files)


class Delegator:
    def __init__(self, mesh: PeerMesh, local_load: Any = None) -> None:
        self.mesh = mesh
        self.cfg = mesh.cfg
        self.local_load = local_load or (lambda: 0.0)
        self._checks: set[asyncio.Task[None]] = set()

    # -- choosing ----------------------------------------------------------------------

    def _score(self, peer: Peer) -> float:
        load = float((peer.telemetry or {}).get("load_factor", 0.0))
        return load / max(peer.success_ewma, 0.05)

    async def pick(self, kind: str, force: bool = False, local: float | None = None) -> Peer | None:
        """The peer to hand this work to, or None to do it here. ``local``: this node's
        load without the work in question (default: its load now)."""
        if kind not in self.cfg.delegate:
            return None
        local = float(self.local_load()) if local is None else local
        if not force and local < self.cfg.delegate_min_load:
            return None
        now = datetime.now(UTC)
        eligible = []
        for peer in await self.mesh.peers(("paired",)):
            out = self.mesh.describe(peer)
            if not out.healthy or kind not in (peer.telemetry or {}).get("accepts", []):
                continue
            if peer.banned_until is not None and peer.banned_until > now:
                continue
            if not peer.same_owner and not self.cfg.delegate_to_other_owners:
                continue
            eligible.append(peer)
        if not eligible:
            return None
        # Two distinct peers drawn at random, the better one kept (one when only one).
        drawn = random.sample(eligible, min(2, len(eligible)))
        best = min(drawn, key=self._score)
        if not force and self._score(best) >= local:
            return None
        return best

    # -- embeddings --------------------------------------------------------------------

    async def remote_embed(self, peer: Peer, texts: Sequence[str]) -> np.ndarray:
        """Embed on ``peer``; a failure bans it for a while (PeerUnreachable), a bad
        answer quarantines it (WorkRefused)."""
        key = uuid.uuid4().hex
        body = {
            "key": key,
            "sealed": seal(unb64(peer.enc_key), peer.node_id, {"texts": list(texts)}),
        }
        try:
            lines = [
                line
                async for line in self.mesh.transport.stream_lines(
                    peer.url,
                    peer.node_id,
                    "/api/v1/peer/mesh/work/embed",
                    body,
                    peer.tls_fingerprint,
                )
            ]
            data = check_line(unb64(peer.sign_key), key, lines[0] if lines else "", 0)
            vectors = np.asarray(open_sealed(self.mesh.identity, data)["vectors"], dtype=np.float32)
            if vectors.shape[0] != len(texts):
                raise WorkRefused("the peer returned the wrong number of vectors")
        except PeerUnreachable:
            await self.mesh.record_outcome(peer.node_id, False, None)
            raise
        except (WorkRefused, ValueError, KeyError) as exc:
            await self.mesh.quarantine(peer.node_id, f"embedding answer refused: {exc}")
            raise WorkRefused(str(exc)) from exc
        await self.mesh.record_outcome(peer.node_id, True, None)
        self.mesh.count_work(peer.node_id, "embed")
        return vectors

    def spot_check_embeddings(
        self, peer: Peer, texts: Sequence[str], theirs: np.ndarray, local: Any
    ) -> None:
        """Now and then, re-embed here and compare (in the background)."""
        if secrets.randbelow(1_000_000) >= self.cfg.spot_check_share * 1_000_000:
            return

        async def check() -> None:
            ours = await local(texts)
            agreement = float(np.min(np.sum(ours * theirs, axis=1)))
            if agreement < EMBED_AGREEMENT:
                await self.mesh.quarantine(
                    peer.node_id, f"spot check: embeddings differ (cosine {agreement:.4f})"
                )
            self.mesh.log_spot_check(peer.node_id, agreement >= EMBED_AGREEMENT)

        self._spawn(check())

    async def embed_chunks(self, chunks: Sequence[Sequence[str]], local: Any) -> list[np.ndarray]:
        """Embed many batches with two workers, this node and the chosen peer, pulling
        from one queue; a batch the peer fails goes back to this node."""
        peer = await self.pick("embed", force=True)
        if peer is None or len(chunks) < 2:
            return [await local(c) for c in chunks]
        results: list[np.ndarray | None] = [None] * len(chunks)
        queue = deque(range(len(chunks)))

        async def here() -> None:
            while queue:
                i = queue.popleft()
                results[i] = await local(chunks[i])

        async def there() -> None:
            assert peer is not None
            while queue:
                i = queue.popleft()
                try:
                    results[i] = await self.remote_embed(peer, chunks[i])
                except (PeerUnreachable, WorkRefused) as exc:
                    log.info("embedding batch back from %s: %s", peer.node_id, exc)
                    queue.appendleft(i)
                    return
                self.spot_check_embeddings(peer, chunks[i], results[i], local)  # type: ignore[arg-type]

        await asyncio.gather(here(), there())
        for i, vectors in enumerate(results):
            if vectors is None:  # the peer failed after this node's worker finished
                results[i] = await local(chunks[i])
        return [r for r in results if r is not None]

    # -- chat ----------------------------------------------------------------------------

    async def remote_chat(
        self, peer: Peer, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> AsyncGenerator[StreamItem, None]:
        key = uuid.uuid4().hex
        payload = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "params": params_dict(params),
        }
        body = {"key": key, "sealed": seal(unb64(peer.enc_key), peer.node_id, payload)}
        public = unb64(peer.sign_key)
        seq = 0
        try:
            async for line in self.mesh.transport.stream_lines(
                peer.url, peer.node_id, CHAT_PATH, body, peer.tls_fingerprint
            ):
                data = check_line(public, key, line, seq)
                seq += 1
                yield decode_stream_item(open_sealed(self.mesh.identity, data))
        except PeerUnreachable:
            await self.mesh.record_outcome(peer.node_id, False, None)
            raise
        except (ValueError, KeyError) as exc:
            await self.mesh.quarantine(peer.node_id, f"chat answer refused: {exc}")
            raise WorkRefused(str(exc)) from exc
        except WorkRefused as exc:
            if "failed its check" in str(exc) or "where" in str(exc):
                await self.mesh.quarantine(peer.node_id, f"chat answer refused: {exc}")
            else:
                await self.mesh.record_outcome(peer.node_id, False, None)
            raise
        await self.mesh.record_outcome(peer.node_id, True, None)
        self.mesh.count_work(peer.node_id, "chat")

    def spot_check_chat(
        self,
        peer: Peer,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        their_text: str,
        local: Any,
    ) -> None:
        """Temperature-0 answers are deterministic for the same model: re-run a share here."""
        if params.temperature > 0 or local.model_id not in (peer.telemetry or {}).get("models", []):
            return
        if secrets.randbelow(1_000_000) >= self.cfg.spot_check_share * 1_000_000:
            return

        async def check() -> None:
            parts = []
            async for item in local.stream(messages, params):
                if isinstance(item, Delta):
                    parts.append(item.text)
                elif isinstance(item, Finish):
                    break
            ours = "".join(parts)
            same = ours == their_text
            if not same:
                await self.mesh.quarantine(
                    peer.node_id,
                    f"spot check: a temperature-0 answer differs ({len(their_text)} vs "
                    f"{len(ours)} characters)",
                )
            self.mesh.log_spot_check(peer.node_id, same)

        self._spawn(check())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def drain(self) -> None:
        """Wait for the spot checks in flight (tests, shutdown)."""
        while self._checks:
            await asyncio.gather(*list(self._checks), return_exceptions=True)
