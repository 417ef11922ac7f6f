"""Strict security headers on every response (the page, its assets, and the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response

from vraagbaak_core.settings import Settings


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(settings: Settings) -> str:
    """``default-src 'self'``, no inline script or style, no framing; the IdP's token endpoint only
    when the page signs in with OIDC. ``'wasm-unsafe-eval'`` lets pdf.js compile its own WebAssembly
    image decoders (served from here); it does not allow JavaScript eval or inline script."""
    connect = ["'self'"]
    if settings.auth.mode == "oidc":
        idp = _origin(settings.web.oidc_token_endpoint)
        if idp:
            connect.append(idp)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        f"connect-src {' '.join(connect)}",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


# Swagger UI (``/docs``) ships an inline bootstrap script; it gets its own, looser policy.
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def install_security_headers(app: FastAPI, settings: Settings) -> None:
    csp = content_security_policy(settings)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        h = response.headers
        if "content-security-policy" not in h:
            h["Content-Security-Policy"] = _DOCS_CSP if request.url.path == "/docs" else csp
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["X-Frame-Options"] = "DENY"
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
