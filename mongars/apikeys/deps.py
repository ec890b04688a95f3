"""``ApiKeyPrincipal``: authenticate a request by ``Authorization: Bearer mg_...``.

The lookup runs in its own short unit of work (not the request session), so
no transaction stays open while a streamed answer is generated.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mongars.apikeys.service import ApiKeyService, KeyPrincipal
from mongars.db.engine import unit_of_work
from mongars.deps import RuntimeDep
from mongars.errors import NotAuthenticated

api_key_bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="a monGARS API key (mg_...)"
)


async def get_api_key_principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_bearer)],
) -> KeyPrincipal:
    if credentials is None or not credentials.credentials:
        raise NotAuthenticated(
            "You didn't provide an API key: send 'Authorization: Bearer mg_...' "
            "(create one with POST /api/v1/keys)"
        )
    async with unit_of_work(runtime.sessions) as session:
        return await ApiKeyService(session).authenticate(credentials.credentials)


ApiKeyPrincipal = Annotated[KeyPrincipal, Depends(get_api_key_principal)]
