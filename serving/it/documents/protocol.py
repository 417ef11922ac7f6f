"""Wire models for ``/api/documents``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    format: str
    groups: list[str]
    classification: str
    language: str
    chunks: int
    sha256: str
    size: int
    ingested_at: str
    source_set: str = ""
    # document control: family, version, status, lifecycle (which version answers now), review/expiry dates
    control: dict[str, Any] = {}


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentOut]


class UploadResult(BaseModel):
    doc_id: str | None
    source: str
    status: Literal["added", "updated", "unchanged"]
    chunks: int
    title: str


class DeleteResult(BaseModel):
    doc_id: str
    deleted_chunks: int
    verified: bool  # counted in the store after the delete: no chunk of the document is left
