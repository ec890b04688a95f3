"""This node's keys: Ed25519 to sign, X25519 to receive encrypted bodies.

Generated at first start into ``<data_dir>/node_keys/`` (mode 0600). The node id is
derived from the first signing key and never changes; a rotation adds a new signing
key, endorsed by the old one, and keeps the old one for verification until it expires.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

KEYS_DIR = "node_keys"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(*_RAW)


def key_id(node_id: str, public: bytes) -> str:
    """``<node id>.<first 12 hex of sha256(key)>``: names one signing key of one node."""
    return f"{node_id}.{hashlib.sha256(public).hexdigest()[:12]}"


def node_id_for(public: bytes) -> str:
    """26 base32 characters of sha256(first signing key): stable, unguessable, no padding."""
    return base64.b32encode(hashlib.sha256(public).digest()).decode()[:26].lower()


def endorsement_text(node_id: str, new_public: bytes) -> bytes:
    return b"mongars-key-rotation\n" + node_id.encode() + b"\n" + new_public


@dataclass(frozen=True)
class RetiredKey:
    kid: str
    public: bytes
    expires_at: datetime


class NodeIdentity:
    def __init__(
        self,
        node_id: str,
        signing: Ed25519PrivateKey,
        encryption: X25519PrivateKey,
        retired: list[RetiredKey],
        directory: Path | None = None,
    ) -> None:
        self.node_id = node_id
        self.signing = signing
        self.encryption = encryption
        self.retired = retired
        self.directory = directory

    @property
    def signing_public(self) -> bytes:
        return raw_public(self.signing.public_key())

    @property
    def encryption_public(self) -> bytes:
        return raw_public(self.encryption.public_key())

    @property
    def kid(self) -> str:
        return key_id(self.node_id, self.signing_public)

    def sign(self, data: bytes) -> bytes:
        return self.signing.sign(data)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> NodeIdentity:
        directory = data_dir / KEYS_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        signing = _load_or_create(directory / "signing.pem", Ed25519PrivateKey.generate)
        encryption = _load_or_create(directory / "encryption.pem", X25519PrivateKey.generate)
        assert isinstance(signing, Ed25519PrivateKey)
        assert isinstance(encryption, X25519PrivateKey)
        meta_path = directory / "node.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
        else:
            meta = {"node_id": node_id_for(raw_public(signing.public_key())), "retired": []}
            _write_private(meta_path, json.dumps(meta).encode())
        retired = [
            RetiredKey(r["kid"], unb64(r["public"]), datetime.fromisoformat(r["expires_at"]))
            for r in meta.get("retired", [])
        ]
        return cls(meta["node_id"], signing, encryption, retired, directory)

    def rotate(self, grace: timedelta) -> tuple[bytes, bytes]:
        """Make a new signing key; return (new public key, the old key's endorsement).

        The old public key is kept (retired) until ``grace`` has passed, so that peers
        can still check what it signed."""
        assert self.directory is not None
        new = Ed25519PrivateKey.generate()
        new_public = raw_public(new.public_key())
        endorsement = self.signing.sign(endorsement_text(self.node_id, new_public))
        now = datetime.now(UTC)
        self.retired = [r for r in self.retired if r.expires_at > now]
        self.retired.append(RetiredKey(self.kid, self.signing_public, now + grace))
        pem = new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.directory / "signing.pem", pem, replace=True)
        meta = {
            "node_id": self.node_id,
            "retired": [
                {"kid": r.kid, "public": b64(r.public), "expires_at": r.expires_at.isoformat()}
                for r in self.retired
            ],
        }
        _write_private(self.directory / "node.json", json.dumps(meta).encode(), replace=True)
        self.signing = new
        return new_public, endorsement


def _load_or_create(path: Path, generate: object) -> object:
    if not path.exists():
        key = generate()  # type: ignore[operator]
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with contextlib.suppress(FileExistsError):  # another process won the race
            _write_private(path, pem)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _write_private(path: Path, data: bytes, replace: bool = False) -> None:
    """Write with mode 0600; ``replace`` goes through a temp file and an atomic rename."""
    target = path.with_suffix(path.suffix + ".tmp") if replace else path
    if replace:
        target.unlink(missing_ok=True)  # a temp file left by a crash
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if replace:
        os.replace(target, path)


def verify_endorsement(old_public: bytes, node_id: str, new_public: bytes, sig: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(old_public).verify(
            sig, endorsement_text(node_id, new_public)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
