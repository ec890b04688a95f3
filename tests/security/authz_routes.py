"""Every route of the app, found at run time, with what it takes (path and query
parameters, a body model) and who may call it. A new route joins the matrix by
itself; a new path parameter must be mapped to a kind of object here first."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.routing import BaseRoute, Mount, Route, Router

from mongars.deps import get_admin_user
from mongars.openai_api.endpoints import OpenAIRoute
from mongars.web.render import HtmlRoute
from mongars.web.session import get_web_admin

# Routes anyone may call (SPEC.md "API compatibility contract", docs/api.md "none",
# docs/console.md): logging in and first-admin setup, health, metrics, API docs,
# the console's login/setup pages and its static files.
PUBLIC: dict[tuple[str, str], str] = {
    ("POST", "/token"): "log in",
    ("GET", "/api/v1/setup"): "is setup needed",
    ("POST", "/api/v1/setup"): "first admin, with the one-time token",
    ("POST", "/api/v1/user/register"): "the registration policy decides (admin_only: 403)",
    ("GET", "/healthz"): "liveness",
    ("GET", "/ready"): "readiness",
    ("GET", "/metrics"): "Prometheus scrape (aggregates, no user data)",
    ("GET", "/openapi.json"): "API schema",
    ("GET", "/docs"): "API schema",
    ("GET", "/docs/oauth2-redirect"): "API schema",
    ("GET", "/redoc"): "API schema",
    ("GET", "/"): "console: redirects to login or setup",
    ("GET", "/setup"): "console: first admin",
    ("POST", "/setup"): "console: first admin",
    ("GET", "/login"): "console: login page",
    ("POST", "/login"): "console: log in",
    ("POST", "/logout"): "console: log out (nothing to do without a session)",
    ("MOUNT", "/static"): "console: vendored assets",
}
# Paired nodes only: an RFC 9421 signature, never a user's token (docs/peers.md).
PEER_SIGNED_PREFIX = "/api/v1/peer/mesh/"
PEER_SIGNED = {"/api/v1/peer/message"}
# Admin areas (docs/api.md, docs/console.md): a non-admin gets 403 on every route here.
ADMIN_PREFIXES = (
    "/api/v1/admin/",
    "/api/v1/user/list",
    "/api/v1/training/",
    "/api/v1/jobs",
    "/api/v1/models",
    "/api/v1/adapters",
    "/api/v1/evolution/",
    "/api/v1/peer/",
    "/api/v1/peers",
    "/admin",
)

# Path parameter -> where its values come from: (whose, kind) of objects made by
# authz_world, or a fixed list (names in a path, not objects). A new name fails the
# matrix until it is mapped here.
PATH_PARAMS: dict[str, tuple[str, str] | tuple[str, ...]] = {
    "thread_id": ("a", "thread"),
    "turn_id": ("a", "turn"),
    "generation_id": ("a", "generation"),
    "key_id": ("a", "apikey"),
    "memory_id": ("a", "memory"),  # notes and facts
    "collection_id": ("a", "collection"),
    "document_id": ("a", "document"),
    "username": ("a", "username"),
    "dataset_id": ("admin", "dataset"),
    "run_id": ("admin", "run"),
    "version_id": ("admin", "adapter"),
    "decision_id": ("admin", "decision"),
    "node_id": ("admin", "peer"),
    "name": ("admin", "job"),
    "sha256": ("admin", "adapter_sha256"),
    "model_id": ("public", "model"),  # the served model's name: no one's data
    "action": ("literal", "pause", "resume", "cancel"),
    "move": ("literal", "rollback", "deactivate", "canary-stop"),
    "decision": ("literal", "approve", "reject", "activate"),
}
# Query parameters and body fields that name someone's object: B sends A's.
ID_FIELDS: dict[str, tuple[str, str]] = {
    "thread_id": ("a", "thread"),
    "session_id": ("a", "thread"),
    "user_id": ("a", "username"),
    "collection": ("a", "collection_name"),
    "collections": ("a", "collection_name"),
    "repositories": ("a", "collection_name"),
}
# Query parameters that are not ids though their names end like one.
NOT_IDS: set[str] = set()
# Query flags B sets when probing: ``all`` lists everyone's (admins only).
ESCALATE: dict[str, str] = {"all": "true"}
# Body fields of routes that read the caller's data into an answer or a result
# (chat, search): B calls them plainly too, and nothing of A's may come back.
READER_FIELDS = {"message", "messages", "query"}

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@dataclass(frozen=True)
class Endpoint:
    method: str  # GET, POST... ; WS for a WebSocket, MOUNT for a mounted app
    path: str  # as declared, converters included: /api/v1/memory/{memory_id:int}
    flavour: str  # api | html | openai | plain | ws | mount
    params: tuple[str, ...]
    query: tuple[tuple[str, bool], ...]  # (name, required)
    body: Any  # the body model (or None)
    form: bool
    admin_dependency: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def access(self) -> str:
        """public | peer | admin | user."""
        if self.key in PUBLIC:
            return "public"
        if self.path.startswith(PEER_SIGNED_PREFIX) or self.path in PEER_SIGNED:
            return "peer"
        if self.path.startswith(ADMIN_PREFIXES):
            return "admin"
        return "user"

    def url(self, values: dict[str, Any]) -> str:
        return _PARAM.sub(lambda m: str(values[m.group(1)]), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    return list(_walk(app.routes, ""))


def _walk(routes: Sequence[BaseRoute], prefix: str) -> Iterator[Endpoint]:
    for context in iter_route_contexts(list(routes)):
        route = context.original_route
        path = prefix + str(context.path)
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if isinstance(route.app, Router) or inner is not None:  # a sub-app: its routes
                yield from _walk(list(inner or []), path)
            else:
                yield Endpoint("MOUNT", path, "mount", (), (), None, False, False)
        elif isinstance(route, APIWebSocketRoute):
            query = tuple(_query(route.dependant))
            yield Endpoint("WS", path, "ws", _names(path), query, None, False, False)
        elif isinstance(route, APIRoute):
            flavour = (
                "html"
                if isinstance(route, HtmlRoute)
                else "openai"
                if isinstance(route, OpenAIRoute)
                else "api"
            )
            body, form = _body(route)
            admin = _depends_on(route.dependant, (get_admin_user, get_web_admin))
            for method in sorted((route.methods or set()) - {"HEAD"}):
                query = tuple(_query(route.dependant))
                yield Endpoint(method, path, flavour, _names(path), query, body, form, admin)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield Endpoint(method, path, "plain", _names(path), (), None, False, False)
        else:  # pragma: no cover - a new kind of route: make the matrix learn it
            raise AssertionError(f"unknown route type {type(route).__name__} at {path}")


def _names(path: str) -> tuple[str, ...]:
    return tuple(m.group(1) for m in _PARAM.finditer(path))


def _query(dependant: Dependant) -> Iterator[tuple[str, bool]]:
    for param in dependant.query_params:
        yield param.alias, param.field_info.is_required()
    for sub in dependant.dependencies:
        yield from _query(sub)


def _depends_on(dependant: Dependant, calls: tuple[Any, ...]) -> bool:
    return dependant.call in calls or any(_depends_on(d, calls) for d in dependant.dependencies)


def _body(route: APIRoute) -> tuple[Any, bool]:
    field = route.body_field
    if field is None:
        return None, False
    model = field.field_info.annotation
    if isinstance(model, types.UnionType) or typing.get_origin(model) is typing.Union:
        model = next(a for a in typing.get_args(model) if a is not type(None))
    form = any(isinstance(p.field_info, params.Form) for p in route.dependant.body_params)
    return model, form


# -- plausible bodies --------------------------------------------------------------------

# Field values that pass validation (a body refused with 422 never reaches the
# ownership check, so it would test nothing).
FIELD_VALUES: dict[str, Any] = {
    "message": "B probe: what do you know?",
    "title": "B probe title",
    "text": "B probe text",
    "query": "SECRET",
    "q": "SECRET",
    "name": "B probe",
    "note": "B probe note",
    "persona": "B probe persona",
    "password": "another horse battery 1",
    "new_password": "another horse battery 1",
    "old_password": "wrong horse battery 1",
    "token": "not-the-setup-token",
    "username": "probe-user",
    "rating": "up",
    "correction": "B probe correction",
    "comment": "B probe comment",
    "share": "0.1",
    "invite": "mongars-invite-not-a-real-one",
    "model": "any",
    "messages": [{"role": "user", "content": "B probe"}],
    "min_confidence": 0.0,
    "max_steps": 1,
    "keep": 1,
    "ttl_min": "15",
    "back": "/",
    "file": b"B probe file",
}


def sample_body(model: Any, ids: dict[str, Any]) -> dict[str, Any]:
    """A body for ``model`` from its JSON schema: required fields, and the id fields of
    ``ids`` (A's values) even where optional."""
    if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return {}
    schema = model.model_json_schema()
    value = _sample(schema, schema.get("$defs", {}), "", ids)
    return value if isinstance(value, dict) else {}


def _sample(schema: dict[str, Any], defs: dict[str, Any], name: str, ids: dict[str, Any]) -> Any:
    if name in ids:
        return ids[name]
    if name in FIELD_VALUES:
        return FIELD_VALUES[name]
    if "$ref" in schema:
        return _sample(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name, ids)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _sample(options[0], defs, name, ids) if options else None
    if schema.get("default") is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        wanted = set(schema.get("required", [])) | (set(props) & (set(ids) | set(FIELD_VALUES)))
        return {k: _sample(props[k], defs, k, ids) for k in props if k in wanted}
    if kind == "array":
        return [_sample(schema.get("items", {}), defs, name, ids)] * max(
            1, schema.get("minItems", 1)
        )
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    if schema.get("format") == "binary" or "contentMediaType" in schema:
        return b"B probe file"
    return "probe"
