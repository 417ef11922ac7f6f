"""Wire models of the IT routes (``/api/admin/due``, ``/api/quarantine``, ``/api/feedback/summary``,
``/api/admin/egress``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MeOut(BaseModel):
    user_id: str
    roles: list[str]
    groups: list[str]
    manages: list[str]


class DueOut(BaseModel):
    doc_id: str
    source: str
    title: str
    owner: str | None
    version: str | None
    what: str
    due: str
    days: int


class DueList(BaseModel):
    object: Literal["list"] = "list"
    within_days: int
    data: list[DueOut]


class QuarantineOut(BaseModel):
    """A kept-out document: the reason and the count per kind, never the values found."""

    id: str
    doc_id: str
    source_set: str
    source: str
    reason: str
    counts: dict[str, int]
    quarantined_at: str
    released: bool
    released_at: str | None
    released_by: str | None
    release_reason: str | None


class QuarantineList(BaseModel):
    object: Literal["list"] = "list"
    totals: dict[str, int]  # per kind, over the entries listed
    data: list[QuarantineOut]


class ReleaseRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=2000, description="why this document may be indexed (audited)")


class DocumentFeedback(BaseModel):
    doc_id: str
    up: int
    down: int
    comments: list[str]


class AnswerFeedback(BaseModel):
    answer_id: str
    created_at: str
    vote: str
    comment: str
    documents: list[str]
    mode: str | None


class FeedbackSummary(BaseModel):
    up: int
    down: int
    documents: list[DocumentFeedback]  # most "niet nuttig" first
    recent: list[AnswerFeedback]
