"""Bodies sealed to one node: HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305) from
``cryptography``, bound to the recipient's node id."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from mongars.peers.identity import NodeIdentity, b64, unb64

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _info(node_id: str) -> bytes:
    return b"mongars-peer:" + node_id.encode()


def seal(recipient_key: bytes, destination: str, data: dict[str, Any]) -> str:
    """Encrypt a JSON body to a node's X25519 key (bound to its node id)."""
    plaintext = json.dumps(data, separators=(",", ":")).encode()
    public = X25519PublicKey.from_public_bytes(recipient_key)
    return b64(_SUITE.encrypt(plaintext, public, info=_info(destination)))


def open_sealed(identity: NodeIdentity, sealed: str) -> dict[str, Any]:
    """Decrypt a body sealed to this node; a JSON object, else ValueError or InvalidTag."""
    data = json.loads(
        _SUITE.decrypt(unb64(sealed), identity.encryption, info=_info(identity.node_id))
    )
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
