"""RFC 9421 HTTP message signatures (Ed25519) for every peer request.

A signed request covers its method, path, query, ``Content-Digest`` (sha-256 of the
body) and ``Mongars-Destination`` (the node it is addressed to), with ``created``,
``expires``, a random ``nonce``, the key id and the tag ``mongars-peer``. The library
(http-message-signatures) builds and checks the signature base; this module adds the
policy: time window, destination and the caller's key lookup. Replay (the nonce) is
checked by the caller against the persisted nonce table.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from mongars.peers.identity import NodeIdentity

TAG = "mongars-peer"
DESTINATION = "mongars-destination"
COVERED = ("@method", "@path", "@query", "content-digest", DESTINATION)


class BadSignature(Exception):
    """Any reason to refuse a peer request; the caller answers one generic 401."""


@dataclass
class _Message:
    """The request view the library reads: method, URL and headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, kid: str, private: object = None, public: object = None) -> None:
        self.kid, self.private, self.public = kid, private, public

    def resolve_private_key(self, key_id: str) -> object:
        if key_id != self.kid:
            raise BadSignature("unknown key")
        return self.private

    def resolve_public_key(self, key_id: str) -> object:
        if key_id != self.kid:
            raise BadSignature("unknown key")
        return self.public


def sign_headers(
    identity: NodeIdentity,
    method: str,
    url: str,
    body: bytes,
    destination: str,
    lifetime: timedelta = timedelta(seconds=60),
    created: datetime | None = None,
) -> dict[str, str]:
    """The headers that make a request to ``url`` a signed peer request."""
    message = _Message(method.upper(), url, {DESTINATION: destination})
    now = created or datetime.now(UTC)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_OneKey(identity.kid, private=identity.signing),
    )
    signer.sign(
        message,
        key_id=identity.kid,
        created=now,
        expires=now + lifetime,
        nonce=secrets.token_urlsafe(24),
        tag=TAG,
        covered_component_ids=COVERED,
        body=body,
    )
    return dict(message.headers)


def signing_key_id(headers: dict[str, str]) -> str:
    """The ``keyid`` a request claims, read before verification to look the key up."""
    raw = headers.get("signature-input")
    if not raw:
        raise BadSignature("no signature")
    try:
        parsed: Any = http_sf.parse(raw.encode(), tltype="dictionary")
        if not isinstance(parsed, dict) or len(parsed) != 1:
            raise ValueError("exactly one signature expected")
        ((_, params),) = parsed.values()
        kid = params.get("keyid")
    except Exception as exc:  # http_sf raises ValueError and friends on bad input
        raise BadSignature("malformed signature input") from exc
    if not isinstance(kid, str) or not kid:
        raise BadSignature("no key id")
    return kid


@dataclass(frozen=True)
class Verified:
    kid: str
    nonce: str
    expires_at: datetime


def verify(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    public_key: bytes,
    own_node_id: str,
    skew: timedelta = timedelta(seconds=60),
) -> Verified:
    """Check a peer request's signature, digest, time window and destination."""
    lowered = {k.lower(): v for k, v in headers}
    kid = signing_key_id(lowered)
    message = _Message(method.upper(), url, lowered)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_OneKey(kid, public=Ed25519PublicKey.from_public_bytes(public_key)),
    )
    try:
        (result,) = verifier.verify(
            message, max_age=skew * 2, expect_tag=TAG, require_components=COVERED, body=body
        )
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise BadSignature(str(exc)) from exc
    params = result.parameters
    created, expires, nonce = params.get("created"), params.get("expires"), result.nonce
    if not isinstance(created, int) or not isinstance(expires, int) or not nonce:
        raise BadSignature("created, expires and nonce are required")
    now = datetime.now(UTC).timestamp()
    if created > now + skew.total_seconds() or expires < now:
        raise BadSignature("outside the time window")
    if expires - created > 600:
        raise BadSignature("lifetime too long")
    if lowered.get(DESTINATION) != own_node_id:
        raise BadSignature("addressed to another node")
    return Verified(kid, nonce, datetime.fromtimestamp(expires + skew.total_seconds(), UTC))
