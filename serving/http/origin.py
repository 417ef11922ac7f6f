"""Host and Origin checks for the loopback pilot (``auth.mode: insecure-dev``).

In insecure-dev every local caller is the dev identity, so a web page the pilot user visits
must not reach the API: DNS rebinding (a foreign name resolving to 127.0.0.1) is refused by
checking ``Host`` against the bind address, and CSRF by refusing state-changing requests whose
``Origin`` (or ``Sec-Fetch-Site``) says they come from another site. Same-origin requests,
e.g. from the staff page this app serves, and clients without an Origin (curl, SDKs) pass.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _hostname(host_header: str) -> str:
    """``Host`` value without its port, lower-case, IPv6 brackets removed."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class LoopbackOriginMiddleware:
    def __init__(self, app: ASGIApp, bind_host: str) -> None:
        self.app = app
        self.allowed = LOOPBACK_NAMES | {_hostname(bind_host)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "")
        if _hostname(host) not in self.allowed:
            await _refuse(send, 421, f"host {host!r} is not this server's address (insecure-dev answers "
                                    "on loopback names only)", "bad_host")
            return
        if scope.get("method", "GET") not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None:
                parts = urlsplit(origin)
                if origin == "null" or parts.netloc.lower() != host.strip().lower():
                    await _refuse(send, 403, "cross-origin request refused", "cross_origin")
                    return
            elif headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                await _refuse(send, 403, "cross-origin request refused", "cross_origin")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "permission_error", "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
