"""Refuse a request that needs a token but carries none, before its body is read.

FastAPI reads and parses a request's body before it runs the dependencies, so the 401 of
`core.auth.authenticate` came only after the whole body had been received and decoded. This pure
ASGI middleware answers the same 401 at once for every route whose dependencies include
`authenticate` (found from the app's own routes, so a new route is covered without a list to keep).
It only looks at the header; whether the token is valid is still `authenticate`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from core.auth import authenticate

MISSING = "missing bearer token: send 'Authorization: Bearer <token>'"


def needs_token(dependant: Dependant | None) -> bool:
    """Whether `authenticate` is among the dependencies, however deep."""
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        if current.call is authenticate:
            return True
        stack.extend(current.dependencies)
    return False


def has_bearer(scope: Scope) -> bool:
    scheme, _, value = Headers(scope=scope).get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


@dataclass(frozen=True, slots=True)
class _Route:
    path: re.Pattern[str]
    methods: frozenset[str]
    needs_token: bool


def token_table(routes: Sequence[BaseRoute]) -> list[_Route]:
    """Every HTTP route of the app (included routers flattened, in matching order) and its need."""
    table = []
    for context in iter_route_contexts(routes):
        regex, methods = getattr(context, "path_regex", None), getattr(context, "methods", None)
        if regex is not None and methods:
            table.append(_Route(regex, frozenset(methods), needs_token(getattr(context, "dependant", None))))
    return table


class BearerGateMiddleware:
    """401 without reading the body when the matched route needs a token and none was sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[_Route] | None = None  # built from the app's routes at the first request

    def _route_needs_token(self, scope: Scope) -> bool:
        if self._table is None:
            self._table = token_table(getattr(scope.get("app"), "routes", []))
        path, method = scope["path"], scope["method"]
        return next((r.needs_token for r in self._table if method in r.methods and r.path.match(path)), False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not has_bearer(scope) and self._route_needs_token(scope):
            body = {"detail": MISSING, "errors": [{"field": "Authorization", "rule": MISSING}]}
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
