"""One error envelope for every route, OpenAI-shaped: {"error": {"message", "type", "code"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.catalog import CatalogUnavailable
from ingest.errors import WritesPaused
from vraagbaak_core.audit import AuditWriteError
from vraagbaak_core.errors import GeneratorError, GeneratorUnavailable, PromptTooLong

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status that routes raise; rendered as the envelope."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.headers = headers or {}


def envelope(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(envelope(exc.message, exc.type, exc.code), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse(envelope("; ".join(parts), "invalid_request_error", "invalid_request"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            envelope(str(exc.detail), type_), exc.status_code, headers=dict(exc.headers or {})
        )

    @app.exception_handler(PromptTooLong)
    async def _too_long(request: Request, exc: PromptTooLong) -> JSONResponse:
        return JSONResponse(envelope(str(exc), "invalid_request_error", "context_length_exceeded"), 400)

    @app.exception_handler(GeneratorUnavailable)
    async def _unavailable(request: Request, exc: GeneratorUnavailable) -> JSONResponse:
        return JSONResponse(
            envelope(str(exc), "service_unavailable", "generator_unavailable"),
            503,
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(CatalogUnavailable)
    async def _catalog(request: Request, exc: CatalogUnavailable) -> JSONResponse:
        log.error("catalog unavailable: %s", exc)
        return JSONResponse(
            envelope(f"the document catalog cannot answer now; try again shortly ({exc})", "service_unavailable",
                     "catalog_unavailable"),
            503, headers={"Retry-After": "5"},
        )

    @app.exception_handler(WritesPaused)
    async def _paused(request: Request, exc: WritesPaused) -> JSONResponse:
        return JSONResponse(envelope(f"{exc}; try again in {exc.retry_after} s", "conflict_error", "reindex_running"),
                            409, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(AuditWriteError)
    async def _audit(request: Request, exc: AuditWriteError) -> JSONResponse:
        log.critical("audit log unavailable, refusing the request: %s", exc)
        return JSONResponse(
            envelope("the audit log cannot be written; nothing is shown until it can", "service_unavailable",
                     "audit_unavailable"),
            503, headers={"Retry-After": "30"},
        )

    @app.exception_handler(GeneratorError)
    async def _generator(request: Request, exc: GeneratorError) -> JSONResponse:
        log.warning("generator error: %s", type(exc).__name__)
        return JSONResponse(envelope(str(exc), "generator_error", "generator_error"), 502)
