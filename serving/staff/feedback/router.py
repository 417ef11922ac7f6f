"""Thin router for ``POST /api/feedback`` (the staff role; the answer must be the caller's own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.concurrency import run_in_threadpool

from serving.http.auth import require_role
from serving.http.errors import ApiError
from serving.staff.feedback.protocol import FeedbackRequest, FeedbackResponse
from serving.staff.feedback.store import UnknownAnswer
from vraagbaak_core.types import Identity

router = APIRouter(tags=["feedback"])


@router.post("/api/feedback", status_code=status.HTTP_201_CREATED, response_model=FeedbackResponse)
async def submit_feedback(
    body: FeedbackRequest, request: Request, identity: Annotated[Identity, Depends(require_role("staff"))]
) -> FeedbackResponse:
    comps = request.app.state.components
    if comps.feedback is None:
        raise ApiError(503, "feedback is not enabled on this server", "service_unavailable", "no_feedback")
    limit = comps.settings.feedback.max_comment_chars
    comment = body.comment.strip()
    if len(comment) > limit:
        raise ApiError(400, f"comment is too long ({len(comment)} characters; at most {limit})",
                       code="comment_too_long")
    if comment and comps.questions is not None:  # the patient-data guard of questions, before it is stored
        comment = await run_in_threadpool(comps.questions.free_text, comment)
    try:
        fid = await run_in_threadpool(comps.feedback.add, body.answer_id, identity.user_id, body.vote, comment)
    except UnknownAnswer:
        raise ApiError(404, f"no answer with id {body.answer_id} for this user", "not_found",
                       "answer_not_found") from None
    comps.metrics.feedback.labels(body.vote).inc()
    await run_in_threadpool(  # an fsync or a PostgreSQL transaction: never on the event loop
        comps.audit.feedback_submit, answer_id=body.answer_id, feedback_id=fid, user_id=identity.user_id,
        network_access_point=request.client.host if request.client else "unknown",
    )
    return FeedbackResponse(feedback_id=fid, answer_id=body.answer_id)
