"""Wire models of ``GET /api/audit/report`` (JSON form; ``format=csv`` returns the rows as CSV)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ReportRow(BaseModel):
    position: int
    timestamp: str
    event_type: str
    action: str
    outcome: str
    outcome_reason: str | None
    user_id: str | None
    role: str | None
    network_access_point: str | None
    purpose_of_use: str | None
    documents: list[str]
    chunks: list[str]
    event_id: str
    trace_id: str | None


class ChainCheckOut(BaseModel):
    ok: bool
    period_ok: bool
    records: int
    period_records: int
    head_sha256: str
    keyed: bool
    errors: list[dict[str, Any]]


class AccessReportOut(BaseModel):
    format: Literal["vraagbaak-access-report"]
    version: int
    generated_at: str
    filter: dict[str, str | None]
    matched: int
    truncated: bool
    users: list[str]
    shown_to: list[str]
    documents: list[str]
    chain: ChainCheckOut
    rows: list[ReportRow]
    manifest: dict[str, Any]


class EgressEndpoint(BaseModel):
    name: str
    address: str


class EgressOut(BaseModel):
    guard_active: bool
    allowlist: str
    endpoints: list[EgressEndpoint]
    allow_cidrs: list[str]
    offline_env: dict[str, str]
