"""App factory: ``create_app(settings)`` with a lifespan that builds the adapters once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from serving.audit.router import router as audit_router
from serving.components import Components, build_components
from serving.http.auth import require_role
from serving.http.authfirst import AuthFirstMiddleware
from serving.http.bodylimit import BodyLimitMiddleware
from serving.http.errors import install_error_handlers
from serving.http.headers import install_security_headers
from serving.http.metrics import Metrics, install_metrics_middleware
from serving.http.origin import LoopbackOriginMiddleware
from serving.http.priority import lower_other_threads, lower_this_thread
from serving.http.proxies import install_trusted_proxies
from serving.it.documents.router import make_router as make_documents_router
from serving.it.reindex import router as reindex_router
from serving.it.router import router as it_router
from serving.staff.answer_check.router import router as answer_check_router
from serving.staff.chat.router import router as chat_router
from serving.staff.content import make_content_router
from serving.staff.feedback.router import router as feedback_router
from serving.web.router import install_web
from vraagbaak_core import __version__
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import Identity

log = logging.getLogger(__name__)


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    """Build the API. ``components`` lets tests share already-loaded models between apps."""
    settings.check_serving_safety()
    metrics = components.metrics if components is not None else Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        comps = components or build_components(settings, metrics=metrics)
        app.state.components = comps
        # the model thread pools started while building run nicer than this, the loop's, thread,
        # and so do the loop's own executor threads (asyncio.to_thread: extractive answers)
        nice = comps.settings.server.worker_nice
        lower_other_threads(nice)
        if nice:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(
                max_workers=comps.settings.server.worker_threads, thread_name_prefix="vraagbaak-worker",
                initializer=lower_this_thread, initargs=(nice,),
            ))
        if settings.auth.mode == "insecure-dev":
            log.warning(
                "auth.mode is insecure-dev: every caller is %r with roles %s and groups %s, on %s only",
                settings.auth.dev_user, settings.auth.dev_roles, settings.auth.dev_groups, settings.server.host,
            )
        yield
        if components is None:
            await comps.aclose()

    app = FastAPI(
        title="Vraagbaak", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        openapi_url="/openapi.json" if settings.server.docs else None,
    )
    install_error_handlers(app)
    app.include_router(chat_router)
    app.include_router(make_content_router())  # before the ingest-only router: staff may read originals
    app.include_router(make_documents_router())
    app.include_router(feedback_router)
    app.include_router(audit_router)
    app.include_router(it_router)
    app.include_router(answer_check_router)
    app.include_router(reindex_router)
    _install_ops(app)
    if settings.server.docs:
        _install_local_docs(app)
    if settings.web.enabled:
        install_web(app, settings)

    # innermost: the caller is authenticated from the headers before any route reads its body
    app.add_middleware(AuthFirstMiddleware, api=app)
    install_metrics_middleware(app, metrics)
    if settings.auth.mode == "insecure-dev":
        app.add_middleware(LoopbackOriginMiddleware, bind_host=settings.server.host)
    # outermost: counts the bytes received before anything (auth included) reads the body
    _install_body_limit(app, settings.limits.max_body_bytes, settings.limits.max_upload_mb)
    install_security_headers(app, settings)
    # outermost: the client address (X-Forwarded-For from trusted proxies only) for everything inside
    install_trusted_proxies(app, settings)
    return app


def _install_ops(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        comps: Components = request.app.state.components
        checks: dict[str, str] = {}
        try:
            await comps.run_blocking(comps.store.count)
            checks["store"] = "ok"
        except Exception as err:  # noqa: BLE001 - readiness reports any backend failure
            checks["store"] = f"error: {type(err).__name__}"
        checks["generator"] = "ok" if await comps.generator.ready() else "unreachable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics(request: Request) -> Response:
        comps: Components = request.app.state.components
        return comps.metrics.render()

    @app.get("/v1/whoami", tags=["ops"])
    async def whoami(identity: Annotated[Identity, Depends(require_role("staff"))]) -> dict[str, object]:
        return {
            "user_id": identity.user_id, "roles": sorted(identity.roles), "groups": sorted(identity.groups),
            "clearance": identity.clearance,
        }


def _install_local_docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle package: no asset from a CDN."""
    import swagger_ui_bundle

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Vraagbaak API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )


def _install_body_limit(app: FastAPI, max_bytes: int, max_upload_mb: float) -> None:
    upload_limit = int(max_upload_mb * 1024 * 1024)

    def limit_for(path: str) -> int:
        return upload_limit if path.startswith("/api/documents") else max_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
