"""Thin router for the auditors' routes: ``GET /api/audit/report`` (the auditor role only, and every view is
itself audited) and ``GET /api/admin/egress`` (this server's allow-list and whether its guard is installed).

``format=json`` (default) answers the report with its signed manifest inline (the manifest signs the
report without the ``manifest`` field); ``format=csv`` answers the rows as CSV with the manifest in the
``Vraagbaak-Report-Manifest`` header (JSON). The chain is read and verified in the threadpool.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from serving.audit.protocol import AccessReportOut, EgressEndpoint, EgressOut
from serving.http.auth import require_role
from serving.http.errors import ApiError
from vraagbaak_core.audit import AuditLog, AuditObject
from vraagbaak_core.audit_report import ReportFilter, manifest, report_csv, report_json, sink_report
from vraagbaak_core.egress import OFFLINE_ENV, Allowlist, configured_endpoints, guard_active
from vraagbaak_core.types import Identity

router = APIRouter(tags=["audit"])
MANIFEST_HEADER = "Vraagbaak-Report-Manifest"
MAX_ROWS = 50_000


def _when(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name}={value!r} is not an ISO 8601 date or date-time", code="bad_date") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _address(request: Request) -> str:
    client = getattr(request.state, "client_address", None)
    if isinstance(client, str):
        return client
    return request.client.host if request.client else "unknown"


@router.get(
    "/api/audit/report",
    response_model=AccessReportOut,
    responses={200: {"content": {"text/csv": {}}}},
)
async def audit_report(
    request: Request,
    identity: Annotated[Identity, Depends(require_role("auditor"))],
    user: Annotated[str | None, Query(max_length=256)] = None,
    document: Annotated[str | None, Query(max_length=256)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    address: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    limit: Annotated[int, Query(ge=0, le=MAX_ROWS)] = 1000,
) -> Response:
    """Who was shown which documents, when, from where, with what outcome; and whether the chain verifies."""
    audit: AuditLog = request.app.state.components.audit
    try:
        filt = ReportFilter(user or None, document or None, _when(from_, "from"), _when(to, "to"), address or None)
    except ValueError as err:
        raise ApiError(400, str(err), code="bad_address") from None
    if filt.since and filt.until and filt.since > filt.until:
        raise ApiError(400, "from is after to", code="bad_period")
    subjects = [AuditObject("person", filt.user)] if filt.user else []
    subjects += [AuditObject("document", filt.document)] if filt.document else []
    # the view is recorded before anything of the log is shown (fail closed: 503 by the error envelope)
    await run_in_threadpool(
        audit.audit_access, "audit.export" if format == "csv" else "audit.read",
        user_id=identity.user_id, role="auditor", network_access_point=_address(request), subjects=subjects,
    )
    report = await run_in_threadpool(sink_report, audit.sink, audit.sealer, filt, limit)
    if format == "csv":
        body = report_csv(report)
        m = manifest(report, body, "csv", audit.sealer)
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            MANIFEST_HEADER: json.dumps(m, separators=(",", ":")),
            "Content-Disposition": 'attachment; filename="toegangsrapport.csv"',
        })
    body = report_json(report)
    out: dict[str, Any] = report.to_json()
    out["manifest"] = manifest(report, body, "json", audit.sealer)
    return JSONResponse(out, headers={MANIFEST_HEADER: json.dumps(out["manifest"], separators=(",", ":"))})


@router.get("/api/admin/egress", response_model=EgressOut)
async def egress(request: Request, identity: Annotated[Identity, Depends(require_role("auditor"))]) -> EgressOut:
    """Where this running server may connect (its allow-list, from its own settings), and whether the guard
    that refuses everything else is installed in this process."""
    settings = request.app.state.components.settings
    allow = Allowlist.from_settings(settings)
    return EgressOut(
        guard_active=guard_active(), allowlist=allow.describe(),
        endpoints=[EgressEndpoint(name=e.name, address=e.address) for e in configured_endpoints(settings)],
        allow_cidrs=list(settings.egress.allow_cidrs),
        offline_env={k: os.environ.get(k, "") for k in OFFLINE_ENV},
    )
