"""Authentication before the body (pure ASGI middleware).

FastAPI reads and parses a route's body (a multipart upload is spooled to a temporary file) before it
solves the route's dependencies, so ``Depends(require_role(...))`` alone would let an anonymous caller
push up to ``limits.max_upload_mb`` onto the disk before its 401. This middleware finds the route the
request is for, and when that route depends on :func:`serving.http.auth.require_role` it authenticates and
authorises the caller from the headers alone, before the app may read one byte of the body. A refused
caller gets the usual envelope (401/403/429); the body is never received. An accepted caller's Identity is
left in ``request.state`` for the route's own dependency, so the check and its rate limit run once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http.auth import ROLE_ATTRIBUTE, authenticate
from serving.http.errors import ApiError, envelope
from vraagbaak_core.types import Identity

# FastAPI >= 0.16x keeps an included router as one route and reaches its routes through contexts;
# older versions flatten included routes into app.routes
_route_contexts: Callable[[Iterable[Any]], Iterator[Any]] = getattr(fastapi.routing, "iter_route_contexts", iter)


_Entry = tuple["re.Pattern[str]", frozenset[str] | None, tuple[str, ...]]


class AuthFirstMiddleware:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._table: list[_Entry] | None = None

    def _routes(self) -> list[_Entry]:
        """(path pattern, methods, roles) of every route, in the router's order (built once, on first use)."""
        if self._table is None:
            table: list[_Entry] = []
            for ctx in _route_contexts(self.api.router.routes):
                regex = getattr(ctx, "path_regex", None)
                if regex is None:
                    continue
                methods = getattr(ctx, "methods", None)
                dependant = getattr(ctx, "dependant", None)
                roles = tuple(dict.fromkeys(_required_roles(dependant))) if isinstance(dependant, Dependant) else ()
                table.append((regex, frozenset(methods) if methods else None, roles))
            self._table = table
        return self._table

    def _roles_for(self, scope: Scope) -> tuple[str, ...]:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        method = str(scope.get("method", "GET"))
        for regex, methods, roles in self._routes():
            if regex.match(path) and (methods is None or method in methods or (method == "HEAD" and "GET" in methods)):
                return roles
        return ()  # no route, or the method is not allowed: the router answers 404/405 without a body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        roles = self._roles_for(scope)
        if roles:
            request = Request(scope)  # headers and client only: no receive, so no body
            authorized: dict[str, Identity] = {}
            try:
                for role in roles:
                    authorized[role] = await authenticate(request, role)
            except ApiError as err:
                response = JSONResponse(envelope(err.message, err.type, err.code), err.status, headers=err.headers)
                await response(scope, receive, send)
                return
            request.state.authorized = authorized
        await self.app(scope, receive, send)


def _required_roles(dependant: Dependant) -> Iterator[str]:
    """The roles that :func:`serving.http.auth.require_role` dependencies of a route (at any depth) ask for."""
    for dep in dependant.dependencies:
        role = getattr(dep.call, ROLE_ATTRIBUTE, None)
        if isinstance(role, str):
            yield role
        yield from _required_roles(dep)
