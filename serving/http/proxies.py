"""The client's address behind a reverse proxy (``server.trusted_proxies``).

uvicorn's ``ProxyHeadersMiddleware`` (a pure ASGI middleware, outermost) replaces the request's client
with the address ``X-Forwarded-For`` names, but only when the peer that connected is one of the trusted
proxies; it takes the rightmost address that is not itself a trusted proxy, so a workstation cannot
choose its own address by sending the header. Everything that reads ``request.client`` then sees the
workstation: the failed-sign-in limit (serving/http/auth_failures.py), the audit's network access point, the
metrics. ``X-Forwarded-Proto`` from a trusted proxy sets the scheme. With no trusted proxies the peer
is the client and the headers are ignored. ``vraagbaak serve`` turns uvicorn's own header handling off
(it trusts 127.0.0.1 by default), so this setting is the only place that decides.
"""

from __future__ import annotations

import socket

from fastapi import FastAPI, Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from vraagbaak_core.settings import Settings


def install_trusted_proxies(app: FastAPI, settings: Settings) -> None:
    trusted = [str(net) for net in settings.server.trusted_proxies]
    if trusted:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)


def client_address(request: Request | None) -> str:
    """The audit's network access point: the client's address (after the trusted proxies), or this host for
    a command-line call."""
    if request is None:
        return f"local:{socket.gethostname()}"
    return request.client.host if request.client else "unknown"
