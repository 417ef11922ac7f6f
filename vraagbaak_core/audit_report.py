"""The NEN 7513 access report: who was shown what, when, from where, with what outcome.

One pass over the chain does both jobs: :func:`vraagbaak_core.audit.verify_entries` checks every seal and
link (so the report says whether the chain, and in it the selected period, verifies) while
:func:`access_report` collects the records that match the filter. Nothing here knows HTTP or files: the
API (``serving/audit``) and the CLI (``vraagbaak audit report``) call the same function.

Exports carry a manifest with the sha256 of the exported bytes, the filter, the chain's head and the
verification result, signed with the audit key (HMAC-SHA256, the chain's ``key_id``) when one is
configured, so a report handed to the FG can be checked against the chain it came from.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from vraagbaak_core.audit import Sealer, utc_timestamp, verify_entries
from vraagbaak_core.types import AuditEntry

REPORT_FORMAT = "vraagbaak-access-report"
REPORT_VERSION = 1
SHOWING_EVENTS = frozenset({"chat.question", "document.view"})  # records of content shown to a person
CSV_COLUMNS = (
    "position", "timestamp", "event_type", "action", "outcome", "outcome_reason", "user_id", "role",
    "network_access_point", "purpose_of_use", "documents", "chunks", "event_id", "trace_id",
)


@dataclass(frozen=True)
class ReportFilter:
    """Every given field must match; ``address`` is one IP address or a network (``10.1.0.0/16``)."""

    user: str | None = None
    document: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        net = None
        if self.address is not None:
            try:
                net = ipaddress.ip_network(self.address, strict=False)
            except ValueError:
                raise ValueError(f"address {self.address!r} is not an IP address or network") from None
        # records carry UTC timestamps of one fixed form (``utc_timestamp``), so text order is time order
        object.__setattr__(self, "_net", net)
        object.__setattr__(self, "_lo", utc_timestamp(self.since) if self.since else None)
        object.__setattr__(self, "_hi", utc_timestamp(self.until) if self.until else None)

    def in_period(self, rec: Mapping[str, Any]) -> bool:
        lo, hi = self._lo, self._hi  # type: ignore[attr-defined]
        if lo is None and hi is None:
            return True
        ts = rec.get("timestamp")
        return isinstance(ts, str) and (lo is None or ts >= lo) and (hi is None or ts <= hi)

    def selects(self, rec: Mapping[str, Any], raw: str | None = None) -> bool:
        """Whether the record matches; ``raw`` (its stored text) lets a document filter skip most records
        by a substring test before looking at their objects."""
        if self.user is not None and rec.get("user_id") != self.user:
            return False
        if not self.in_period(rec):
            return False
        if self.document is not None and raw is not None and self.document not in raw:
            return False
        if self.document is not None and not any(
            isinstance(o, dict) and o.get("id") == self.document and o.get("type") == "document"
            for o in rec.get("objects") or ()
        ):
            return False
        net = self._net  # type: ignore[attr-defined]
        if net is None:
            return True
        try:
            return ipaddress.ip_address(str(rec.get("network_access_point") or "")) in net
        except ValueError:
            return False

    def to_json(self) -> dict[str, str | None]:
        return {
            "user": self.user,
            "document": self.document,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "address": self.address,
        }


@dataclass(frozen=True)
class AccessRow:
    """One record of the chain as the report shows it (ids only: the chain never holds document text)."""

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
    documents: tuple[str, ...]
    chunks: tuple[str, ...]
    event_id: str
    trace_id: str | None

    @classmethod
    def of(cls, position: int, rec: Mapping[str, Any]) -> AccessRow:
        objs = [o for o in rec.get("objects") or [] if isinstance(o, Mapping)]

        def opt(key: str) -> str | None:
            v = rec.get(key)
            return None if v is None else str(v)

        return cls(
            position=position,
            timestamp=str(rec.get("timestamp", "")),
            event_type=str(rec.get("event_type", "")),
            action=str(rec.get("action", "")),
            outcome=str(rec.get("outcome", "")),
            outcome_reason=opt("outcome_reason"),
            user_id=opt("user_id"),
            role=opt("role"),
            network_access_point=opt("network_access_point"),
            purpose_of_use=opt("purpose_of_use"),
            documents=tuple(str(o.get("id")) for o in objs if o.get("type") == "document"),
            chunks=tuple(str(o.get("id")) for o in objs if o.get("type") == "chunk"),
            event_id=str(rec.get("event_id", "")),
            trace_id=opt("trace_id"),
        )


@dataclass(frozen=True)
class ChainCheck:
    """The verification of the whole chain, and of the records in the selected period."""

    ok: bool  # the whole chain verifies
    period_ok: bool  # no broken place falls in the selected period (or next to it)
    records: int
    period_records: int
    head_sha256: str
    keyed: bool
    errors: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AccessReport:
    filter: ReportFilter
    rows: tuple[AccessRow, ...]
    matched: int  # rows matching the filter (rows holds at most ``limit`` of them, newest last)
    users: tuple[str, ...]  # distinct users in the matching rows
    shown_to: tuple[str, ...]  # of those, the users who were shown document content (questions, views)
    documents: tuple[str, ...]  # distinct documents in the matching rows
    chain: ChainCheck
    generated_at: str = field(default_factory=utc_timestamp)

    @property
    def truncated(self) -> bool:
        return self.matched > len(self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "generated_at": self.generated_at,
            "filter": self.filter.to_json(),
            "matched": self.matched,
            "truncated": self.truncated,
            "users": list(self.users),
            "shown_to": list(self.shown_to),
            "documents": list(self.documents),
            "chain": asdict(self.chain),
            "rows": [asdict(r) for r in self.rows],
        }


def access_report(
    entries: Iterable[AuditEntry], sealer: Sealer, filt: ReportFilter, limit: int | None = None
) -> AccessReport:
    """Verify the chain and select the records ``filt`` matches, in one pass. ``limit`` keeps the newest."""
    rows: list[AccessRow] = []
    matched = 0
    users: set[str] = set()
    shown_to: set[str] = set()
    docs: set[str] = set()
    period: list[int] = []  # positions of the records in the selected period

    def see(entry: AuditEntry, rec: dict[str, Any]) -> None:
        nonlocal matched
        if filt.in_period(rec):
            period.append(entry.position)
        if not filt.selects(rec, entry.raw):
            return
        matched += 1
        row = AccessRow.of(entry.position, rec)
        rows.append(row)
        if limit is not None and len(rows) > 2 * limit:
            del rows[: len(rows) - limit]
        if row.user_id:
            users.add(row.user_id)
            if row.event_type in SHOWING_EVENTS and row.outcome == "success":
                shown_to.add(row.user_id)
        docs.update(row.documents)

    res = verify_entries(entries, sealer, on_record=see)
    if limit is not None:
        rows = rows[-limit:] if limit else []
    lo, hi = (period[0], period[-1]) if period else (0, -1)
    broken = [e for e in res.errors if lo - 1 <= e.line <= hi + 1]
    check = ChainCheck(
        ok=res.ok,
        period_ok=not broken,
        records=res.records,
        period_records=len(period),
        head_sha256=res.head_sha256,
        keyed=res.keyed,
        errors=tuple({"line": e.line, "kind": e.kind, "detail": e.reason} for e in res.errors[:100]),
    )
    return AccessReport(filt, tuple(rows), matched, tuple(sorted(users)), tuple(sorted(shown_to)),
                        tuple(sorted(docs)), check)


def report_csv(report: AccessReport) -> bytes:
    """The matching rows as CSV (UTF-8 with BOM, so Excel opens it as UTF-8; ``;``-free quoting)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in report.rows:
        d = asdict(r)
        d["documents"] = " ".join(r.documents)
        d["chunks"] = " ".join(r.chunks)
        w.writerow(["" if d[c] is None else d[c] for c in CSV_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def report_json(report: AccessReport) -> bytes:
    """The report as canonical JSON (sorted keys, no whitespace, UTF-8): the bytes a manifest signs, which a
    reader can rebuild from the parsed report (less its ``manifest`` field) to check it."""
    return canonical_json(report.to_json())


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def manifest(report: AccessReport, body: bytes, fmt: str, sealer: Sealer) -> dict[str, Any]:
    """What an export is, signed: HMAC-SHA256 under the audit key over the canonical manifest (no key:
    a plain SHA-256, which shows changes but proves no origin; ``signature_alg`` says which)."""
    m: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "export_format": fmt,
        "export_sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
        "generated_at": report.generated_at,
        "filter": report.filter.to_json(),
        "rows": len(report.rows),
        "matched": report.matched,
        "chain_head_sha256": report.chain.head_sha256,
        "chain_ok": report.chain.ok,
        "period_ok": report.chain.period_ok,
        "key_id": sealer.key_id,
    }
    m["signature_alg"] = "hmac-sha256" if sealer.keyed else "sha256"
    m["signature"] = sealer.seal(m)
    return m


def check_manifest(m: Mapping[str, Any], body: bytes, sealer: Sealer) -> list[str]:
    """Problems with an export and its manifest (empty: the bytes and the manifest are as signed)."""
    problems = []
    sig = str(m.get("signature", ""))
    unsigned = {k: v for k, v in m.items() if k != "signature"}
    if sealer.keyed and m.get("key_id") != sealer.key_id:
        problems.append(f"signed with key {m.get('key_id')!r}, not the configured key")
    elif not hmac.compare_digest(sealer.seal(unsigned), sig):
        problems.append("the manifest's signature does not match (manifest edited, or another key)")
    if hashlib.sha256(body).hexdigest() != m.get("export_sha256"):
        problems.append("the export's sha256 does not match its manifest (export edited)")
    return problems
