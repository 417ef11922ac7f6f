"""The staff page at ``/`` and ``/chat``, ``/beheer`` for IT and auditors; ``/api/config`` tells them how to sign in.

Assets: the page's own files from ``serving/web/static``, pdf.js from the pinned npm package
(``web.assets_dir``, filled by ``scripts/install-frontend``). Nothing is fetched from elsewhere.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from vraagbaak_core import __version__
from vraagbaak_core.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
PDFJS_FILES = ("build/pdf.mjs", "build/pdf.worker.mjs")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def install_web(app: FastAPI, settings: Settings) -> None:
    assets = settings.resolve(settings.web.assets_dir)
    pdfjs = assets / "pdfjs-dist"
    if all((pdfjs / f).is_file() for f in PDFJS_FILES):
        app.mount("/static/vendor/pdfjs", StaticFiles(directory=pdfjs), name="pdfjs")
    else:
        log.warning("pdf.js not found under %s: run scripts/install-frontend; PDFs open as downloads", assets)
    app.mount("/static/app", StaticFiles(directory=STATIC), name="web")
    router = APIRouter(include_in_schema=False)
    index = STATIC / "index.html"
    beheer = STATIC / "beheer.html"

    @router.get("/")
    @router.get("/chat")
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @router.get("/beheer")
    async def beheer_page() -> FileResponse:
        """IT's, privacy officers' and auditors' page; every section's data comes from role-checked routes."""
        return FileResponse(beheer, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @router.get("/api/config")
    async def config(request: Request) -> JSONResponse:
        s = settings
        body: dict[str, object] = {
            "version": __version__, "auth": s.auth.mode, "language": s.prompts.default_language,
            "pdf_viewer": (pdfjs / PDFJS_FILES[0]).is_file(),
            "ui": {"history": s.ui.history, "idle_timeout_s": s.ui.idle_timeout_s},
        }
        if s.auth.mode == "oidc":
            w = s.web
            body["oidc"] = {
                "client_id": w.oidc_client_id, "authorization_endpoint": w.oidc_authorization_endpoint,
                "token_endpoint": w.oidc_token_endpoint, "scopes": w.oidc_scopes, "bearer": w.oidc_bearer,
                "end_session_endpoint": w.oidc_end_session_endpoint,
            }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    app.include_router(router)
