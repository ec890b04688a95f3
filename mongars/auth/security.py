"""Password hashing (argon2) and JWT (HS256) encoding; no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from mongars.errors import NotAuthenticated

ALGORITHM = "HS256"
_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


# A hash to verify against when the account does not exist, so a login for an
# unknown user takes as long as one with a wrong password.
DUMMY_HASH = _hasher.hash("monGARS-timing-equaliser")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    jti: str
    version: int
    expires_at: datetime


def create_token(secret: str, user_id: int, version: int, ttl: timedelta) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + ttl
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
        "ver": version,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_token(secret: str, token: str) -> TokenClaims:
    try:
        data = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat", "jti"]}
        )
        return TokenClaims(
            user_id=int(data["sub"]),
            jti=str(data["jti"]),
            version=int(data.get("ver", 0)),
            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Token expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise NotAuthenticated("Invalid token") from exc
