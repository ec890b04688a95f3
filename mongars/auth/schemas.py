"""Account request and response bodies (v1 contract field names)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME_RE.match(value):
            raise ValueError(
                "username must be 3-64 characters of letters, digits, '_', '.', '@' or '-'"
            )
        return value


class RegisterRequest(Credentials):
    is_admin: bool = False  # honoured only when an admin registers the user


class RegisterResponse(BaseModel):
    status: str = "registered"
    is_admin: bool


class SetupRequest(Credentials):
    token: str = Field(min_length=1, max_length=256)


class SetupStatus(BaseModel):
    setup_required: bool


class ChangePasswordRequest(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class StatusResponse(BaseModel):
    status: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_at: str


class UserList(BaseModel):
    users: list[str]


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    is_active: bool


class ResetPasswordRequest(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class AuditEntryOut(BaseModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    target: str | None
    detail: str
    address: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_before: int | None  # pass as ?before= for the next (older) page
