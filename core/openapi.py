"""An OpenAPI document that tells the truth about errors and authentication.

FastAPI's default document declared every 422 as an array of pydantic errors (the service answers
`{"detail": "<field>: <rule>", "errors": [...]}`), listed none of the 400/401/403/404/409/413/429
answers and had no security scheme, so clients (and schemathesis) could not trust it. Here the
document is generated as usual and then completed from the routes themselves: which need a token
(the same walk as `core.bearer_gate`), which roles they let through (`x-roles`), which take path
parameters or a body.
Codes only a handler knows (409) are declared on the route with `errors(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field

from core.bearer_gate import needs_token

SCHEME = "bearer"
REF = "#/components/schemas/ErrorOut"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DESCRIPTIONS = {
    400: "The body could not be read (not valid JSON or not UTF-8)",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token's role may not do this",
    404: "No such record",
    409: "The request conflicts with what is stored; nothing was changed",
    410: "The record is gone for good (an erased account): `detail` says so",
    413: "The body (or a batch) is larger than the limit named in `detail`",
    422: "A field breaks a rule: `detail` and `errors` name the field and the rule",
    429: "Too many requests; `Retry-After` says when to try again",
}


class FieldProblem(BaseModel):
    """One broken rule: which field, and what the rule is."""

    field: str
    rule: str
    type: str | None = Field(None, description="the validator's error type, when there is one")


class ErrorOut(BaseModel):
    """Every 4xx body: a sentence for people and, where fields are at fault, one entry per field."""

    detail: str = Field(description="'<field>: <rule>; ...' or a sentence")
    errors: list[FieldProblem] | None = Field(None, description="the fields at fault, when known")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the codes only its handler knows about (e.g. `errors(409)`)."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}


_BODY_MODELS: dict[str, type[BaseModel]] = {}  # models named by json_body, added to the components


def json_body(*models: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its JSON body itself (for speed): one of `models`."""
    _BODY_MODELS.update({m.__name__: m for m in models})
    refs = [{"$ref": f"#/components/schemas/{m.__name__}"} for m in models]
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def roles_of(dependant: Dependant) -> list[str] | None:
    """The roles a `require_roles` dependency lets through, or None when there is no role check."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        roles = getattr(current.call, "roles", None)
        if roles is not None:
            return sorted(str(r) for r in roles)
        stack.extend(current.dependencies)
    return None


def _codes(method: str, dependant: Dependant, operation: dict[str, Any]) -> set[int]:
    """The error codes an operation can answer, from what its route depends on."""
    codes = {429}
    if needs_token(dependant):
        codes |= {401, 403} if roles_of(dependant) is not None else {401}
    if dependant.path_params:
        codes |= {404, 422}
    if operation.get("parameters"):
        codes.add(422)
    if method in BODY_METHODS:
        codes |= {400, 413, 422}
    return codes


def complete(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Declare the shared error body for every code each operation can return, and the bearer scheme."""
    components = schema.setdefault("components", {})
    for name, model in {"ErrorOut": ErrorOut, **_BODY_MODELS}.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.setdefault("schemas", {}).update(body.pop("$defs", {}) | {name: body})
    components["securitySchemes"] = {SCHEME: {"type": "http", "scheme": "bearer"}}
    for context in iter_route_contexts(routes):
        path, methods = getattr(context, "path_format", None), getattr(context, "methods", None)
        dependant = getattr(context, "dependant", None)
        if path not in schema.get("paths", {}) or not methods or dependant is None:
            continue
        for method in methods:
            operation = schema["paths"][path].get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in sorted(_codes(method, dependant, operation)):
                responses[str(code)] = {
                    "description": DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": REF}}},
                }
            for code, declared in responses.items():  # route-declared codes (errors(409)) share the schema
                if code.isdigit() and int(code) in DESCRIPTIONS:
                    declared["content"] = {"application/json": {"schema": {"$ref": REF}}}
            if needs_token(dependant):
                operation["security"] = [{SCHEME: []}]
            if (roles := roles_of(dependant)) is not None:
                operation["x-roles"] = roles  # who may call it; the fuzzing test reads it too
    unused = {"HTTPValidationError", "ValidationError"}
    if not any(f"schemas/{name}" in str(schema["paths"]) for name in unused):
        for name in unused:
            components["schemas"].pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Replace `app.openapi` with the generated document, completed by `complete` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = complete(schema, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return openapi
