"""Adapter replication between same-owner peers (docs/peers.md).

The producer offers the versions it vouches for (approved, active, retired) as
manifests signed by its key: adapter id (sha256), base model and its sha256, files with
sizes and sha256, evaluation metrics. The consumer checks the producer's signature and
the base model, downloads each file with resume (an offset per attempt), checks every
hash, and installs the file atomically into its registry as a **candidate**: replicated
adapters still need this node's approval before they serve. Adapters can memorise user
data, so both sides refuse peers not paired as the same owner.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mongars.adapters import store
from mongars.adapters.schemas import AdapterOut
from mongars.errors import Conflict, Forbidden, NotFound
from mongars.peers.errors import PeerFailed
from mongars.peers.identity import b64, unb64
from mongars.peers.transport import PeerUnreachable
from mongars.settings import Settings

if TYPE_CHECKING:
    from mongars.adapters.registry import AdapterRegistry
    from mongars.peers.models import Peer
    from mongars.peers.service import PeerMesh

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
ATTEMPTS = 6  # connections per file (each resumes where the last stopped)
CORRUPT_RETRIES = 2  # whole-file retries after a hash mismatch
_model_hashes: dict[tuple[str, int, float], str] = {}


def base_model_sha256(settings: Settings) -> str:
    """The sha256 of the model adapters apply to: the packaged GGUF's known hash, a
    MODEL_PATH file's hash (computed once per file version), or for HTTP providers the
    hash of the model's name (their weights are not here to hash)."""
    llm = settings.llm
    if llm.provider in ("llamacpp", "ray") and not llm.model_path:
        from mongars.llm.model_files import CATALOGUE, _expected_sha256

        return _expected_sha256(CATALOGUE[llm.embedded_model])
    if llm.model_path:
        path = Path(llm.model_path)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime)
        if key not in _model_hashes:
            from mongars.training.spec import file_sha256

            _model_hashes[key] = file_sha256(path)
        return _model_hashes[key]
    return hashlib.sha256(f"{llm.provider}:{llm.model}".encode()).hexdigest()


def canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class Replication:
    def __init__(self, mesh: PeerMesh, registry: AdapterRegistry) -> None:
        self.mesh = mesh
        self.registry = registry
        self.data_dir = mesh.settings.data_dir
        self.incoming = store.root(self.data_dir) / ".incoming"

    # -- producer ------------------------------------------------------------------------

    async def manifests(self, peer: Peer) -> list[dict[str, Any]]:
        if not peer.same_owner:
            raise Forbidden("adapters go only to peers paired as the same owner")
        base_sha = await asyncio.to_thread(base_model_sha256, self.mesh.settings)
        out = []
        for version in await self.registry.shareable():
            manifest = {
                "adapter": version.sha256,
                "node_id": self.mesh.identity.node_id,
                "kid": self.mesh.identity.kid,
                "base_model": version.base_model,
                "base_model_sha256": base_sha,
                "files": [
                    {"name": store.FILE, "size": version.size_bytes, "sha256": version.sha256}
                ],
                "metrics": version.metrics or {},
                "created_at": version.created_at.isoformat(),
            }
            manifest["signature"] = b64(self.mesh.identity.sign(canonical(manifest)))
            out.append(manifest)
        return out

    async def file(self, peer: Peer, sha256: str, offset: int) -> tuple[AsyncIterator[bytes], int]:
        """The bytes of a shareable version's file from ``offset``, and its size."""
        if not peer.same_owner:
            raise Forbidden("adapters go only to peers paired as the same owner")
        if sha256 not in {v.sha256 for v in await self.registry.shareable()}:
            raise NotFound("no such shared adapter")
        path = await asyncio.to_thread(store.verify, self.data_dir, sha256)
        size = path.stat().st_size
        if not 0 <= offset <= size:
            raise Conflict(f"offset {offset} is outside the file (size {size})")

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                f.seek(offset)
                while data := await asyncio.to_thread(f.read, CHUNK):
                    yield data

        return chunks(), size

    # -- consumer ------------------------------------------------------------------------

    async def _peer(self, node_id: str) -> Peer:
        peer = await self.mesh.get(node_id)
        if peer.state != "paired":
            raise Conflict(f"the peer is {peer.state}, not paired")
        if not peer.same_owner:
            raise Forbidden("adapters are replicated only between peers of the same owner")
        return peer

    async def remote(self, node_id: str) -> list[dict[str, Any]]:
        """The peer's manifests, each checked against its signing key."""
        peer = await self._peer(node_id)
        try:
            answer, _ = await self.mesh._send(peer, "/api/v1/peer/mesh/adapters", {})
        except PeerUnreachable as exc:
            raise PeerFailed(f"the peer did not list its adapters: {exc}") from exc
        manifests = answer.get("adapters")
        if not isinstance(manifests, list):
            raise PeerFailed("the peer's adapter list is malformed")
        public = unb64(peer.sign_key)
        checked = []
        for m in manifests:
            try:
                if m["node_id"] != peer.node_id or m["kid"] != peer.kid:
                    raise ValueError("another node's manifest")
                Ed25519PublicKey.from_public_bytes(public).verify(
                    unb64(m["signature"]), canonical(m)
                )
            except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
                await self.mesh.quarantine(peer.node_id, f"adapter manifest refused: {exc}")
                raise PeerFailed("a manifest failed its signature check: peer quarantined") from exc
            checked.append(m)
        return checked

    async def pull(self, actor: str, node_id: str, sha256: str | None) -> dict[str, Any]:
        """Replicate the peer's adapters (or one): installed as candidates here."""
        peer = await self._peer(node_id)
        local_base = await asyncio.to_thread(base_model_sha256, self.mesh.settings)
        manifests = await self.remote(node_id)
        if sha256 is not None:
            manifests = [m for m in manifests if m["adapter"] == sha256]
            if not manifests:
                raise NotFound("the peer offers no such adapter")
        installed: list[AdapterOut] = []
        skipped: list[dict[str, str]] = []
        for m in manifests:
            if m["base_model_sha256"] != local_base:
                if sha256 is not None:
                    raise Conflict(
                        f"adapter {m['adapter'][:12]} is for base model "
                        f"{m['base_model_sha256'][:12]}, this node serves {local_base[:12]}"
                    )
                skipped.append({"adapter": m["adapter"], "reason": "other base model"})
                continue
            if await self.registry.has(m["adapter"]):
                skipped.append({"adapter": m["adapter"], "reason": "already here"})
                continue
            part = await self._download(peer, m)
            try:
                installed.append(await self.registry.register_replica(part, m, node_id, actor))
            finally:
                part.unlink(missing_ok=True)
        return {"installed": installed, "skipped": skipped}

    async def _download(self, peer: Peer, manifest: dict[str, Any]) -> Path:
        """The file, complete and checked, in ``.incoming``; resumes after a cut."""
        (entry,) = manifest["files"]
        sha, size = str(entry["sha256"]), int(entry["size"])
        if sha != manifest["adapter"] or len(sha) != 64:
            raise PeerFailed("the manifest's file is not the adapter it names")
        self.incoming.mkdir(parents=True, exist_ok=True)
        part = self.incoming / f"{sha}.part"
        corrupt = 0
        attempts = 0
        while True:
            have = part.stat().st_size if part.exists() else 0
            if have > size:
                part.unlink()
                have = 0
            if have == size:
                if await asyncio.to_thread(_sha256, part) == sha:
                    return part
                part.unlink()
                corrupt += 1
                log.warning("adapter %s from %s: hash mismatch, refused", sha[:12], peer.node_id)
                if corrupt > CORRUPT_RETRIES:
                    raise PeerFailed(f"adapter {sha[:12]} arrived corrupted {corrupt} times")
                continue
            if attempts >= ATTEMPTS:
                raise PeerFailed(f"adapter {sha[:12]}: transfer failed {attempts} times")
            if have:
                log.info("adapter %s: resuming at byte %d of %d", sha[:12], have, size)
            attempts += 1
            try:
                with part.open("ab") as f:
                    async for chunk in self.mesh.transport.stream_bytes(
                        peer.url,
                        peer.node_id,
                        f"/api/v1/peer/mesh/adapters/{sha}/file",
                        {"offset": have},
                        peer.tls_fingerprint,
                    ):
                        f.write(chunk[: size - f.tell()] if f.tell() + len(chunk) > size else chunk)
                    f.flush()
                    os.fsync(f.fileno())
            except PeerUnreachable as exc:
                log.info("adapter %s transfer cut (%s); resuming", sha[:12], exc)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while data := f.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()
