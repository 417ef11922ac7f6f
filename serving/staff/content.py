"""``GET /api/documents/{doc_id}/content``: a document's original bytes, for the staff who may see it.

The same rule as retrieval (``retrieval.access.may_see`` mirrors ``access_filter``): a caller who
may not see the document gets the same 404 as for a document that does not exist. Every attempt
is an audit record (``document.view``) naming the document id only.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ingest.errors import DocumentNotFound
from retrieval.access import may_see
from serving.http.auth import require_role
from serving.http.errors import ApiError
from serving.it.documents.router import get_ingestor
from vraagbaak_core.audit import Outcome
from vraagbaak_core.types import Identity

# Served types. Stored HTML and Markdown are shown as plain text: nothing from a document runs on
# this origin. Anything else is a download.
_TYPES = {
    "pdf": ("application/pdf", "inline"),
    "markdown": ("text/plain; charset=utf-8", "inline"),
    "text": ("text/plain; charset=utf-8", "inline"),
    "html": ("text/plain; charset=utf-8", "inline"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "attachment"),
    "odt": ("application/vnd.oasis.opendocument.text", "attachment"),
}


def make_content_router() -> APIRouter:
    router = APIRouter(tags=["documents"])

    @router.get("/api/documents/{doc_id}/content", response_class=Response,
                responses={200: {"content": {"application/pdf": {}}}, 404: {"description": "not found"}})
    async def document_content(
        request: Request, doc_id: str, identity: Annotated[Identity, Depends(require_role("staff"))]
    ) -> Response:
        comps = request.app.state.components
        ingestor = get_ingestor(request)
        not_found = ApiError(404, f"no document with id {doc_id}", "not_found", "document_not_found")
        nap = request.client.host if request.client else "unknown"

        async def audit(outcome: Outcome, classification: str | None, reason: str | None) -> None:
            await run_in_threadpool(  # an fsync or a PostgreSQL transaction: never on the event loop
                comps.audit.document_view, document_id=doc_id, classification=classification,
                user_id=identity.user_id, network_access_point=nap, outcome=outcome, reason=reason,
            )

        try:
            doc = await run_in_threadpool(ingestor.get_document, doc_id)
        except (DocumentNotFound, ValueError):
            await audit("failure", None, "no such document")
            raise not_found from None
        if not may_see(identity, tuple(doc.groups), doc.classification):
            await audit("refused", doc.classification, "not visible to this user (groups/clearance)")
            raise not_found
        try:
            data = await run_in_threadpool(ingestor.originals.read, doc_id)
        except (FileNotFoundError, ValueError):
            await audit("failure", doc.classification, "original not stored")
            raise ApiError(404, f"the original of document {doc_id} is not stored; ingest it again",
                           "not_found", "original_not_stored") from None
        await audit("success", doc.classification, None)
        media, disposition = _TYPES.get(doc.format, ("application/octet-stream", "attachment"))
        name = PurePosixPath(doc.source).name or doc_id
        return Response(data, media_type=media, headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        })

    return router
