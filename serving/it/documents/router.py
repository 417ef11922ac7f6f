"""Thin router for ``/api/documents``: upload (multipart, bytes only), list, delete.

Every route needs the ``ingest`` role. The Ingestor is read from ``app.state.ingestor`` or
``app.state.components.ingestor``; without one the routes answer 503. An upload is never a
URL or a server-side path: only the uploaded bytes and their file name (used as the source
``uploads/<name>`` and as a format hint) reach the Ingestor. Every upload is a new document with
its own id, unless the form names the upload it replaces (``replace=<doc_id>``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingest.errors import DocumentBusy, DocumentNotFound, ErasureError, LabelError, ReplaceError
from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from serving.http.errors import ApiError
from serving.http.priority import lowered
from serving.it.documents.protocol import DeleteResult, DocumentList, DocumentOut, UploadResult
from serving.it.ingest_audit import audit_erasure, audit_results, erasure_reason
from vraagbaak_core.audit import AuditLog
from vraagbaak_core.types import PUBLIC_GROUP, Identity

RequireIngest = Callable[..., Awaitable[Identity]] | Callable[..., Identity]


def get_ingestor(request: Request) -> Ingestor:
    state = request.app.state
    ingestor = getattr(state, "ingestor", None)
    if ingestor is None:
        comps = getattr(state, "components", None)
        ingestor = getattr(comps, "ingestor", None)
    if ingestor is None:
        raise ApiError(
            503, "document ingest is not enabled on this server", "service_unavailable", "no_ingest"
        )
    assert isinstance(ingestor, Ingestor)
    return ingestor


def _worker_nice(request: Request) -> int:
    comps = getattr(request.app.state, "components", None)
    return int(comps.settings.server.worker_nice) if comps is not None else 0


def _audit(request: Request) -> AuditLog | None:
    comps = getattr(request.app.state, "components", None)
    audit = getattr(comps, "audit", None)
    return audit if isinstance(audit, AuditLog) else None


def _actor(request: Request) -> str:
    identity = getattr(request.state, "identity", None)
    return identity.user_id if isinstance(identity, Identity) else "unknown"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _groups(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(g.strip() for g in (raw or "").split(",") if g.strip()))


def manages(identity: Identity, groups: Iterable[str]) -> bool:
    """Whether an ingest identity may see, replace or erase a document with these groups: ``admin``
    manages every document; anyone else only documents whose every group (the public marker
    aside) is one it manages, and at least one."""
    if "admin" in identity.roles:
        return True
    own = set(groups) - {PUBLIC_GROUP}
    return bool(own) and own <= identity.manages


def _check_upload_scope(identity: Identity, labels: Labels) -> None:
    if "admin" in identity.roles:
        return
    outside = sorted(set(labels.groups) - identity.manages - {PUBLIC_GROUP})
    if outside:
        raise ApiError(403, f"you do not manage the group(s) {', '.join(outside)}", "permission_error",
                       "group_not_managed")
    if labels.public and not labels.groups:
        raise ApiError(403, "a public document needs one of the groups you manage as well", "permission_error",
                       "group_not_managed")


def make_router(require_ingest: RequireIngest | None = None) -> APIRouter:
    if require_ingest is None:
        from serving.http.auth import require_role

        require_ingest = require_role("ingest")
    # the ingest role is checked for every route here, before any request body is read
    router = APIRouter(prefix="/api/documents", tags=["documents"], dependencies=[Depends(require_ingest)])

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadResult)
    async def upload(
        request: Request,
        file: Annotated[UploadFile, File(description="the document's bytes")],
        groups: Annotated[str | None, Form(description="comma-separated access groups")] = None,
        classification: Annotated[str | None, Form()] = None,
        public: Annotated[bool, Form(description="world-readable")] = False,
        replace: Annotated[
            str | None, Form(description="doc_id of an earlier upload that this file replaces")
        ] = None,
        identity: Identity = Depends(require_ingest),  # the router's own check, cached per request
    ) -> Any:
        ingestor = get_ingestor(request)
        try:
            labels = Labels(groups=_groups(groups), classification=classification, public=public)
        except LabelError as err:
            raise ApiError(400, str(err), "invalid_request_error", "invalid_labels") from None
        _check_upload_scope(identity, labels)
        if replace:
            try:
                replaced = await run_in_threadpool(ingestor.get_document, replace)
            except DocumentNotFound as err:
                raise ApiError(404, str(err), "not_found", "document_not_found") from None
            if not manages(identity, replaced.groups):
                raise ApiError(403, f"{replaced.source} belongs to groups you do not manage", "permission_error",
                               "group_not_managed")
        limit = ingestor.max_bytes
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise ApiError(413, f"file larger than {limit // 2**20} MB (ingest.max_file_mb)",
                           "invalid_request_error", "too_large")
        try:
            result = await run_in_threadpool(  # parsing and embedding yield the CPU to the loop
                lowered, _worker_nice(request),
                lambda: ingestor.ingest_bytes(data, file.filename or "", labels, replace=replace or None),
            )
        except LabelError as err:
            raise ApiError(400, str(err), "invalid_request_error", "invalid_labels") from None
        except DocumentNotFound as err:
            raise ApiError(404, str(err), "not_found", "document_not_found") from None
        except ReplaceError as err:
            raise ApiError(409, str(err), "invalid_request_error", "not_an_upload") from None
        audit = _audit(request)
        if audit is not None:
            await run_in_threadpool(audit_results, audit, ingestor, [result], user_id=_actor(request),
                                    network_access_point=_client(request))
        if result.status == "failed":
            raise ApiError(422, f"{result.source}: {result.reason}", "invalid_request_error", "unprocessable")
        if result.status == "quarantined":
            raise ApiError(422, f"{result.source}: {result.reason}", "invalid_request_error", "quarantined")
        body = UploadResult(
            doc_id=result.doc_id, source=result.source, status=result.status,  # type: ignore[arg-type]
            chunks=result.chunks, title=result.title,
        )
        code = status.HTTP_200_OK if result.status == "unchanged" else status.HTTP_201_CREATED
        return JSONResponse(body.model_dump(), status_code=code)

    @router.get("", response_model=DocumentList)
    async def list_documents(
        request: Request, identity: Identity = Depends(require_ingest)
    ) -> DocumentList:
        ingestor = get_ingestor(request)
        docs = [d for d in await run_in_threadpool(ingestor.list_documents) if manages(identity, d.groups)]
        return DocumentList(
            data=[
                DocumentOut(
                    doc_id=d.doc_id, source=d.source, title=d.title, format=d.format, groups=list(d.groups),
                    classification=d.classification, language=d.language, chunks=d.chunks, sha256=d.sha256,
                    size=d.size, ingested_at=d.ingested_at, source_set=d.source_set, control=d.control.to_dict(),
                )
                for d in docs
            ]
        )

    @router.delete("/{doc_id}", response_model=DeleteResult)
    async def delete_document(
        request: Request, doc_id: str, identity: Identity = Depends(require_ingest)
    ) -> DeleteResult:
        ingestor = get_ingestor(request)
        audit = _audit(request)
        classification: str | None = None
        try:
            info = await run_in_threadpool(ingestor.get_document, doc_id)
        except DocumentNotFound:
            info = None
        if info is not None:
            if not manages(identity, info.groups):
                raise ApiError(403, f"document {doc_id} belongs to groups you do not manage", "permission_error",
                               "group_not_managed")
            classification = info.classification
        elif "admin" not in identity.roles and await run_in_threadpool(ingestor.store.count, doc_id) > 0:
            # vectors the state does not know (their groups unknown to it): only an admin erases those
            raise ApiError(403, f"document {doc_id} has no state row; only an admin may erase its vectors",
                           "permission_error", "group_not_managed")
        try:
            # erase by doc_id in the store whatever the state says (vectors may exist without a state row)
            erasure = await run_in_threadpool(ingestor.erase_document, doc_id)
        except DocumentNotFound as err:
            raise ApiError(404, str(err), "not_found", "document_not_found") from None
        except DocumentBusy as err:  # another process (replica, ingest job) is writing it: nothing was erased
            raise ApiError(409, str(err), "conflict_error", "document_busy") from None
        except ErasureError as err:
            msg = f"erasure not verified: {err}"
            if audit is not None:
                await run_in_threadpool(audit_erasure, audit, doc_id, classification, user_id=_actor(request),
                                        network_access_point=_client(request), ok=False, reason=msg)
            raise ApiError(500, msg, "server_error", "erasure_unverified") from None
        if audit is not None:
            await run_in_threadpool(audit_erasure, audit, doc_id, erasure.classification or classification,
                                    user_id=_actor(request), network_access_point=_client(request),
                                    ok=erasure.verified, reason=erasure_reason(erasure))
        return DeleteResult(doc_id=doc_id, deleted_chunks=erasure.removed, verified=erasure.verified)

    return router
