"""Thin router for ``POST /api/answer-check`` (role staff): the chat's answer check for integrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from serving.http.auth import require_role
from serving.http.errors import ApiError
from serving.staff.answer_check.check import check_answer
from serving.staff.answer_check.protocol import AnswerCheckRequest, AnswerCheckResponse, WireClaim
from vraagbaak_core.types import Identity

router = APIRouter(tags=["answer-check"])


@router.post("/api/answer-check", response_model=AnswerCheckResponse)
async def answer_check(
    body: AnswerCheckRequest, request: Request, identity: Annotated[Identity, Depends(require_role("staff"))]
) -> AnswerCheckResponse:
    comps = request.app.state.components
    limit = comps.settings.limits.max_message_chars
    if len(body.answer) > limit:
        raise ApiError(400, f"answer is too long ({len(body.answer)} characters; at most {limit})",
                       code="answer_too_long")
    sources = {s.n: s.text for s in body.sources}
    claims = await comps.run_blocking(check_answer, body.answer, sources, body.language)
    return AnswerCheckResponse(claims=[WireClaim.of(c) for c in claims])
