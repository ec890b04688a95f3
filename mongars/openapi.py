"""The OpenAPI schema, made to say what the error handlers really send.

FastAPI documents every 422 as its own ``HTTPValidationError`` (``detail`` a list),
but :mod:`mongars.errors` answers ``{detail: str, code, errors: [...]}``, and every
other error as ``{detail, code}``. :func:`install_openapi` rewrites the generated
schema once: the 422 body becomes :class:`ValidationErrorBody`, and each operation
gets a ``default`` response, :class:`ErrorBody`, for the statuses it does not list
(401, 403, 404, 409, 413, 429, 503...). Routes that answer in OpenAI's error shape
(``/v1``) keep theirs: their ``default`` is that shape and they never send a 422.
The API fuzz tests (tests/fuzz) check every response against this schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

_REF = "#/components/schemas/"


class ErrorBody(BaseModel):
    """Every monGARS error: a sentence for people and a stable code for programs."""

    detail: str
    code: str = Field(examples=["not_found"])


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """A request that did not validate (422): one sentence, then each field's problem
    (``errors`` is absent when a service, not the request's declared types, refused it)."""

    detail: str
    code: str = Field(examples=["invalid_input"])
    errors: list[ValidationProblem] = Field(default_factory=list)


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the corrected schema (FastAPI builds and caches it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return describe_errors(generate())  # idempotent: cheap on the cached schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_errors(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema(
        [(ErrorBody, "validation"), (ValidationErrorBody, "validation")],
        ref_template=_REF + "{model}",
    )
    components.update(defs.get("$defs", {}))
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _describe_operation(operation.setdefault("responses", {}))
    return schema


def _describe_operation(responses: dict[str, Any]) -> None:
    own = _own_error_ref(responses)
    if "422" in responses:
        if own is None:
            responses["422"] = _json("Validation Error", _REF + "ValidationErrorBody")
        else:  # these routes answer a bad request with a 400 in their own shape
            del responses["422"]
    error = own or _REF + "ErrorBody"
    for status, response in responses.items():
        if status.startswith(("4", "5")) and "content" not in response:
            response.update(_json(response.get("description", "Error"), error))
    responses.setdefault("default", _json("Error", error))


def _own_error_ref(responses: dict[str, Any]) -> str | None:
    """The error schema a route declared itself (OpenAI's), if any."""
    for status, response in responses.items():
        if status.startswith(("4", "5")) and status != "422":
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            if isinstance(ref, dict) and "$ref" in ref and not ref["$ref"].endswith("/ErrorBody"):
                return str(ref["$ref"])
    return None


def _json(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}
