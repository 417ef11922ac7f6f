"""Thin router for IT's routes behind ``/beheer``: reviews due (``ingest``), the quarantine (``admin``: the
privacy officer) and staff feedback (``ingest``: quality staff). Every action is checked here, whatever the
page shows; blocking reads run in the threadpool.
A quarantine release is audited before it takes effect, with the caller's identity; a release that then
fails is audited as failed.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ingest.doccontrol import due, parse_window
from ingest.quarantine import QuarantineError
from serving.http.auth import require_role, require_signed_in
from serving.http.errors import ApiError
from serving.it.documents.router import get_ingestor, manages
from serving.it.protocol import (
    AnswerFeedback,
    DocumentFeedback,
    DueList,
    DueOut,
    FeedbackSummary,
    MeOut,
    QuarantineList,
    QuarantineOut,
    ReleaseRequest,
)
from serving.staff.feedback.export import parse_since, write_export
from vraagbaak_core.types import DocControl, Identity

router = APIRouter(tags=["it"])


def _address(request: Request) -> str:
    client = getattr(request.state, "client_address", None)
    if isinstance(client, str):
        return client
    return request.client.host if request.client else "unknown"


@router.get("/api/beheer/me", response_model=MeOut)
async def me(identity: Annotated[Identity, Depends(require_signed_in())]) -> MeOut:
    """Who is signed in and with which roles: the page shows the sections those roles may use."""
    return MeOut(user_id=identity.user_id, roles=sorted(identity.roles), groups=sorted(identity.groups),
                 manages=sorted(identity.manages))


@router.get("/api/admin/due", response_model=DueList)
async def documents_due(
    request: Request, identity: Annotated[Identity, Depends(require_role("ingest"))],
    within: Annotated[str, Query(max_length=8, description="30d, 6w, 3m")] = "30d",
) -> DueList:
    """Reviews and expiries due within the window (overdue always), of the documents the caller manages."""
    try:
        days = parse_window(within)
    except ValueError as err:
        raise ApiError(400, str(err), code="bad_window") from None
    ingestor = get_ingestor(request)
    records = await run_in_threadpool(ingestor.state.all)
    mine = [r for r in records if r.committed and r.control and manages(identity, r.groups)]
    items = due(((r.doc_id, r.source, r.title, DocControl.from_dict(r.control)) for r in mine), days)
    return DueList(within_days=days, data=[DueOut(**i.to_dict()) for i in items])


@router.get("/api/quarantine", response_model=QuarantineList)
async def quarantine_list(
    request: Request, identity: Annotated[Identity, Depends(require_role("admin"))],
    include_released: Annotated[bool, Query(alias="all")] = False,
) -> QuarantineList:
    """What the patient-data guard kept out: reason and counts per kind, never the values."""
    store = get_ingestor(request).quarantine
    entries = await run_in_threadpool(store.list, include_released)
    totals: Counter[str] = Counter()
    for e in entries:
        totals.update(e.counts)
    return QuarantineList(totals=dict(totals), data=[QuarantineOut(**{
        k: v for k, v in e.to_dict().items() if k in QuarantineOut.model_fields}) for e in entries])


@router.post("/api/quarantine/{entry_id}/release", response_model=QuarantineOut)
async def quarantine_release(
    entry_id: str, body: ReleaseRequest, request: Request,
    identity: Annotated[Identity, Depends(require_role("admin"))],
) -> QuarantineOut:
    """Release a document (indexed on its next ingest): audited first, with the caller and the reason."""
    comps = request.app.state.components
    store = get_ingestor(request).quarantine
    entry = await run_in_threadpool(store.get, entry_id)
    if entry is None:
        raise ApiError(404, f"no quarantine entry {entry_id}", "not_found", "quarantine_not_found")
    if entry.released:
        raise ApiError(409, f"quarantine entry {entry_id} was already released", code="already_released")
    reason = body.reason.strip()
    what = f"quarantine {entry.id} release ({entry.source}): {reason}"
    await run_in_threadpool(
        comps.audit.document_change, "document.update", document_id=entry.doc_id, classification=None,
        user_id=identity.user_id, role="admin", network_access_point=_address(request), outcome="success",
        reason=what,
    )
    try:
        released = await run_in_threadpool(lambda: store.release(entry_id, by=identity.user_id, reason=reason))
    except QuarantineError as err:
        await run_in_threadpool(
            comps.audit.document_change, "document.update", document_id=entry.doc_id, classification=None,
            user_id=identity.user_id, role="admin", network_access_point=_address(request), outcome="failure",
            reason=f"{what}; not released: {err}",
        )
        raise ApiError(409, str(err), code="release_failed") from None
    return QuarantineOut(**{k: v for k, v in released.to_dict().items() if k in QuarantineOut.model_fields})


@router.get("/api/feedback/summary", response_model=FeedbackSummary)
async def feedback_summary(
    request: Request, identity: Annotated[Identity, Depends(require_role("ingest"))],
    recent: Annotated[int, Query(ge=0, le=500)] = 50,
) -> FeedbackSummary:
    """Votes per document (most "niet nuttig" first) and the most recent votes with their comments."""
    fb = request.app.state.components.feedback
    if fb is None:
        raise ApiError(503, "feedback is not enabled on this server", "service_unavailable", "no_feedback")
    rows = await run_in_threadpool(lambda: list(fb.export(None)))
    per: dict[str, dict[str, Any]] = defaultdict(lambda: {"up": 0, "down": 0, "comments": []})
    for r in rows:
        for d in r.documents:
            per[d.doc_id][r.vote] += 1
            if r.comment:
                per[d.doc_id]["comments"].append(r.comment)
    docs = [DocumentFeedback(doc_id=k, up=v["up"], down=v["down"], comments=v["comments"][-20:])
            for k, v in per.items()]
    docs.sort(key=lambda d: (-d.down, d.up, d.doc_id))
    latest = sorted(rows, key=lambda r: r.created_at, reverse=True)[:recent]
    return FeedbackSummary(
        up=sum(1 for r in rows if r.vote == "up"), down=sum(1 for r in rows if r.vote == "down"), documents=docs,
        recent=[AnswerFeedback(answer_id=r.answer_id, created_at=r.created_at, vote=r.vote, comment=r.comment,
                               documents=[d.doc_id for d in r.documents], mode=r.mode) for r in latest],
    )


@router.get("/api/feedback/export", response_class=Response)
async def feedback_export(
    request: Request, identity: Annotated[Identity, Depends(require_role("ingest"))],
    format: Annotated[Literal["csv", "jsonl"], Query()] = "csv",
    since: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Every feedback entry as CSV or JSON lines (the question only where the settings allow it)."""
    comps = request.app.state.components
    if comps.feedback is None:
        raise ApiError(503, "feedback is not enabled on this server", "service_unavailable", "no_feedback")
    try:
        start = parse_since(since)
    except ValueError as err:
        raise ApiError(400, str(err), code="bad_date") from None
    rows = await run_in_threadpool(lambda: list(comps.feedback.export(start)))
    buf = io.StringIO()
    write_export(rows, format, buf, comps.settings.audit.question_text != "none")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return Response(buf.getvalue().encode("utf-8"), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="feedback.{format}"'})
