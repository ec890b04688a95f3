"""Work delegated between paired nodes: chat generations (streamed) and embedding
batches.

A work request is signed like every peer request, and its body is sealed (HPKE) to the
node that does the work: ``{"key": idempotency key, "sealed": ...}``. Each answer line
is ``{"seq", "data", "sig"}``: ``data`` sealed to the requester, ``sig`` the worker's
Ed25519 signature over ``key\\nseq\\ndata`` (HPKE's base mode does not say who sealed;
the signature does, also over plain HTTP on a private link).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mongars.errors import Conflict, FeatureDisabled, InvalidInput, NotAuthenticated
from mongars.llm.base import ChatMessage, Delta, Finish, GenerationParams, StreamItem
from mongars.peers.identity import NodeIdentity, b64, unb64
from mongars.peers.sealing import open_sealed, seal

if TYPE_CHECKING:
    from mongars.peers.models import Peer
    from mongars.runtime import Runtime

log = logging.getLogger(__name__)
MAX_TEXTS = 512  # per embedding batch
MAX_MESSAGES = 200
CACHE = 256
ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}  # completed work items kept for retries with the same key


class WorkRefused(Exception):
    """A work answer failed its checks (signature, seal, order): the peer is suspect."""


def sign_line(identity: NodeIdentity, key: str, seq: int, data: str) -> str:
    return b64(identity.sign(f"{key}\n{seq}\n{data}".encode()))


def check_line(public: bytes, key: str, line: str, expected_seq: int) -> str:
    """The sealed data of one answer line, after its signature and order are checked."""
    try:
        item = json.loads(line)
        seq, data, sig = item["seq"], item["data"], item["sig"]
        if seq != expected_seq:
            raise WorkRefused(f"line {seq} where {expected_seq} was due")
        Ed25519PublicKey.from_public_bytes(public).verify(
            unb64(sig), f"{key}\n{seq}\n{data}".encode()
        )
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise WorkRefused(f"a work answer failed its check: {type(exc).__name__}") from exc
    return str(data)


def params_dict(params: GenerationParams) -> dict[str, Any]:
    out = asdict(params)
    out.pop("adapter", None)  # the worker answers with its own active adapter
    out.pop("json_schema", None)
    return out


class WorkServer:
    """Does work for paired peers on this node (``MONGARS_PEERS__ACCEPT``)."""

    def __init__(self, runtime: Runtime, identity: NodeIdentity) -> None:
        self.runtime = runtime
        self.identity = identity
        self._done: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._running: set[tuple[str, str]] = set()

    def _open(self, sealed: str) -> dict[str, Any]:
        try:
            return open_sealed(self.identity, sealed)
        except (InvalidTag, ValueError, TypeError) as exc:
            raise NotAuthenticated("peer request refused") from exc

    def _accepts(self, kind: str) -> None:
        if kind not in self.runtime.settings.peers.accept:
            raise FeatureDisabled(f"this node does not take {kind} work from peers")

    def _line(self, peer: Peer, key: str, seq: int, data: dict[str, Any]) -> str:
        sealed = seal(unb64(peer.enc_key), peer.node_id, data)
        sig = sign_line(self.identity, key, seq, sealed)
        return json.dumps({"seq": seq, "data": sealed, "sig": sig}) + "\n"

    def _begin(self, peer: Peer, key: str) -> list[str] | None:
        """The lines of a finished item with this key (a retry), or None to do it now."""
        ident = (peer.node_id, key)
        if ident in self._done:
            return self._done[ident]
        if ident in self._running:
            raise Conflict("this work item is being done")
        self._running.add(ident)
        return None

    def _end(self, peer: Peer, key: str, lines: list[str] | None) -> None:
        ident = (peer.node_id, key)
        self._running.discard(ident)
        if lines is not None:
            self._done[ident] = lines
            while len(self._done) > CACHE:
                self._done.popitem(last=False)

    async def embed(self, peer: Peer, key: str, sealed: str) -> str:
        self._accepts("embed")
        request = self._open(sealed)
        texts = request.get("texts")
        if (
            not isinstance(texts, list)
            or not 0 < len(texts) <= MAX_TEXTS
            or not all(isinstance(t, str) for t in texts)
        ):
            raise InvalidInput(f"texts: 1 to {MAX_TEXTS} strings")
        memory = self.runtime.memory
        if memory is None:
            raise FeatureDisabled("this node has no embedding model loaded")
        cached = self._begin(peer, key)
        if cached is not None:
            return cached[0]
        lines = None
        try:
            vectors = await memory.embedder.embed(texts)
            lines = [self._line(peer, key, 0, {"vectors": vectors.tolist()})]
            return lines[0]
        finally:
            self._end(peer, key, lines)

    async def chat(self, peer: Peer, key: str, sealed: str) -> AsyncIterator[str]:
        """Check the request now (errors are HTTP errors), then stream the answer."""
        self._accepts("chat")
        request = self._open(sealed)
        try:
            messages = [
                ChatMessage(ROLES[m["role"]], str(m["content"])) for m in request["messages"]
            ]
            params = GenerationParams(**request["params"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("a chat work item needs messages and params") from exc
        if not 0 < len(messages) <= MAX_MESSAGES or params.max_tokens < 1:
            raise InvalidInput("bad chat work item")
        cached = self._begin(peer, key)
        if cached is not None:
            return _replay(cached)
        return self._generate(peer, key, messages, params)

    async def _generate(
        self, peer: Peer, key: str, messages: list[ChatMessage], params: GenerationParams
    ) -> AsyncIterator[str]:
        lines: list[str] = []
        complete = False
        self.runtime.generation_started()
        try:
            seq = 0
            async for item in self.runtime.llm.stream(messages, params):
                data: dict[str, Any]
                if isinstance(item, Delta):
                    data = {"type": "delta", "text": item.text, "logprobs": item.logprobs}
                else:
                    data = {
                        "type": "finish",
                        "prompt_tokens": item.prompt_tokens,
                        "completion_tokens": item.completion_tokens,
                        "finish_reason": item.finish_reason,
                        "model": self.runtime.llm.model_id,
                    }
                line = self._line(peer, key, seq, data)
                lines.append(line)
                seq += 1
                yield line
            complete = True
        except Exception as exc:  # told to the requester, which falls back or fails
            log.warning("delegated chat for %s failed: %s", peer.node_id, exc)
            yield self._line(peer, key, len(lines), {"type": "error", "detail": str(exc)[:200]})
        finally:
            self.runtime.generation_ended()
            self._end(peer, key, lines if complete else None)


async def _replay(lines: Sequence[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line
        await asyncio.sleep(0)


def decode_stream_item(data: dict[str, Any]) -> StreamItem:
    kind = data.get("type")
    if kind == "delta":
        return Delta(str(data["text"]), [float(x) for x in data.get("logprobs", [])])
    if kind == "finish":
        return Finish(
            int(data["prompt_tokens"]), int(data["completion_tokens"]), str(data["finish_reason"])
        )
    raise WorkRefused(f"the peer failed: {str(data.get('detail', kind))[:200]}")
