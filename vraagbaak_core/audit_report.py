"""The NEN 7513 access report: who was shown what, when, from where, with what outcome.

One pass over the chain does both jobs: :func:`vraagbaak_core.audit.verify_entries` checks every seal and
link (so the report says whether the chain, and in it the selected period, verifies) while
:func:`access_report` collects the records that match the filter. :func:`sink_report` does the same from a
sink, incrementally where the sink keeps a sealed checkpoint of its verified prefix
(:mod:`vraagbaak_core.audit_checkpoint`): the prefix is re-hashed, not re-verified, its lines are parsed only
where the filter may match them, and every entry after it is verified in full. Any difference (an edited,
removed or torn prefix entry, a forged checkpoint, a break after it) and the report is the whole
verification, as without a checkpoint, with the checkpoint's head required (so a truncation shows). Nothing
here knows HTTP or files: the API (``serving/audit``) and the CLI (``vraagbaak audit report``) call
:func:`sink_report`.

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
import itertools
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from vraagbaak_core import audit_checkpoint
from vraagbaak_core.audit import ChainWalk, Sealer, VerifyResult, utc_timestamp, verify_entries
from vraagbaak_core.audit_checkpoint import Checkpoint, PrefixDigest, document_needle, plain_field, reads_plain
from vraagbaak_core.ports import AuditCheckpointStore, AuditSink
from vraagbaak_core.types import AuditEntry

log = logging.getLogger(__name__)

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

    @property
    def has_period(self) -> bool:
        return self.since is not None or self.until is not None

    def in_period(self, rec: Mapping[str, Any]) -> bool:
        return self.ts_in_period(rec.get("timestamp"))

    def ts_in_period(self, ts: object) -> bool:
        lo, hi = self._lo, self._hi  # type: ignore[attr-defined]
        if lo is None and hi is None:
            return True
        return isinstance(ts, str) and (lo is None or ts >= lo) and (hi is None or ts <= hi)

    def may_select_plain(self, raw: str) -> bool:
        """False only where :meth:`selects` is False, for a line that ``audit_checkpoint.reads_plain``
        accepted; in period is checked apart (:meth:`ts_in_period`). Parses nothing."""
        if self.user is not None and plain_field(raw, "user_id") != self.user:
            return False
        if self.document is not None and document_needle(self.document) not in raw:
            return False
        net = self._net  # type: ignore[attr-defined]
        if net is None:
            return True
        try:
            return ipaddress.ip_address(plain_field(raw, "network_access_point") or "") in net
        except ValueError:
            return False

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


class _Collect:
    """The report's rows, users, documents and period, record by record in chain order."""

    def __init__(self, filt: ReportFilter, limit: int | None) -> None:
        self.filt = filt
        self.limit = limit
        self.rows: list[AccessRow] = []
        self.matched = 0
        self.users: set[str] = set()
        self.shown_to: set[str] = set()
        self.docs: set[str] = set()
        self.period = 0  # records in the selected period, the first and last of their positions
        self.lo, self.hi = 0, -1

    def in_period(self, position: int) -> None:
        if not self.period:
            self.lo = position
        self.period += 1
        self.hi = position

    def see(self, position: int, raw: str, rec: dict[str, Any]) -> None:
        if self.filt.in_period(rec):
            self.in_period(position)
        if self.filt.selects(rec, raw):
            self.select(position, rec)

    def see_plain(self, positions: list[int], raws: list[str]) -> None:
        """The lines of a verified prefix that read plain (``audit_checkpoint.reads_plain``): each pre-test
        rules out only lines that :meth:`ReportFilter.selects` rules out, and only the lines left are parsed."""
        f = self.filt
        idx = list(range(len(raws)))
        if f.has_period:
            idx = [i for i in idx if f.ts_in_period(plain_field(raws[i], "timestamp"))]
        if idx:
            self.in_period(positions[idx[0]])
            self.period += len(idx) - 1
            self.hi = positions[idx[-1]]
        for needle in (f'"user_id":"{f.user}"' if f.user is not None else None,
                       document_needle(f.document) if f.document is not None else None):
            if needle is not None:  # plain_field equal to the user, a document's id: the line holds this
                idx = [i for i in idx if needle in raws[i]]
        for i in idx:
            raw = raws[i]
            if f.may_select_plain(raw):
                rec = orjson.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError(f"entry {positions[i]} is not a record")
                if f.selects(rec, raw):
                    self.select(positions[i], rec)

    def select(self, position: int, rec: Mapping[str, Any]) -> None:
        self.matched += 1
        row = AccessRow.of(position, rec)
        self.rows.append(row)
        if self.limit is not None and len(self.rows) > 2 * self.limit:
            del self.rows[: len(self.rows) - self.limit]
        if row.user_id:
            self.users.add(row.user_id)
            if row.event_type in SHOWING_EVENTS and row.outcome == "success":
                self.shown_to.add(row.user_id)
        self.docs.update(row.documents)

    def report(self, res: VerifyResult) -> AccessReport:
        rows = self.rows
        if self.limit is not None:
            rows = rows[-self.limit:] if self.limit else []
        broken = [e for e in res.errors if self.lo - 1 <= e.line <= self.hi + 1]
        check = ChainCheck(
            ok=res.ok,
            period_ok=not broken,
            records=res.records,
            period_records=self.period,
            head_sha256=res.head_sha256,
            keyed=res.keyed,
            errors=tuple({"line": e.line, "kind": e.kind, "detail": e.reason} for e in res.errors[:100]),
        )
        return AccessReport(self.filt, tuple(rows), self.matched, tuple(sorted(self.users)),
                            tuple(sorted(self.shown_to)), tuple(sorted(self.docs)), check)


def access_report(
    entries: Iterable[AuditEntry], sealer: Sealer, filt: ReportFilter, limit: int | None = None
) -> AccessReport:
    """Verify the chain and select the records ``filt`` matches, in one pass. ``limit`` keeps the newest."""
    return _whole(entries, sealer, filt, limit)[0]


def _whole(
    entries: Iterable[AuditEntry], sealer: Sealer, filt: ReportFilter, limit: int | None,
    expect_head: str | None = None, location: str = "",
) -> tuple[AccessReport, Checkpoint | None]:
    """The report from every entry, and the checkpoint of the whole chain when it verifies."""
    col = _Collect(filt, limit)
    digest = PrefixDigest()
    plain = True

    def see(entry: AuditEntry, rec: dict[str, Any]) -> None:
        nonlocal plain
        col.see(entry.position, entry.raw, rec)
        plain = plain and reads_plain(entry.raw, rec)

    res = verify_entries(digest.feed(entries), sealer, expect_head, on_record=see)
    cp = None
    if res.ok and res.records == digest.entries and digest.checkpointable:
        cp = audit_checkpoint.checkpoint(location, sealer, digest, res.head_sha256, res.open_access, plain)
    return col.report(res), cp


def _incremental(
    entries: Iterable[AuditEntry], sealer: Sealer, filt: ReportFilter, limit: int | None, cp: Checkpoint
) -> tuple[AccessReport, Checkpoint] | None:
    """The report trusting ``cp``'s prefix once its entries hash the same, verifying every entry after it;
    None when the prefix differs or anything after it does not verify (the caller then walks it whole)."""
    col = _Collect(filt, limit)
    it = iter(entries)
    prefix = list(itertools.islice(it, cp.records))
    if not all(e.complete for e in prefix):
        return None
    positions, raws = [e.position for e in prefix], [e.raw for e in prefix]
    del prefix
    digest = PrefixDigest.of(positions, raws)
    if (not digest.checkpointable
            or (digest.entries, digest.position, digest.hexdigest()) != (cp.records, cp.position, cp.prefix_sha256)):
        return None
    try:
        if cp.plain:
            col.see_plain(positions, raws)
        else:
            for p, raw in zip(positions, raws, strict=True):
                rec = orjson.loads(raw)
                if not isinstance(rec, dict):
                    return None
                col.see(p, raw, rec)
    except (ValueError, TypeError):  # cannot be: the prefix hashed as verified; walk it whole all the same
        return None
    walk = ChainWalk(sealer, head=cp.head_sha256, records=cp.records, open_access=cp.open_access)
    plain = cp.plain
    for e in it:
        digest.add(e)
        try:
            rec = orjson.loads(e.raw)
        except orjson.JSONDecodeError:
            return None
        if not e.complete or not isinstance(rec, dict):
            return None
        col.see(e.position, e.raw, rec)
        plain = plain and reads_plain(e.raw, rec)
        walk.step(e.position, rec)
        if not walk.clean:
            return None
    if not digest.checkpointable:
        return None
    res = walk.result()
    return col.report(res), audit_checkpoint.checkpoint(cp.location, sealer, digest, res.head_sha256,
                                                         res.open_access, plain)


def sink_report(sink: AuditSink, sealer: Sealer, filt: ReportFilter, limit: int | None = None) -> AccessReport:
    """:func:`access_report` over a sink's chain, verifying only what its checkpoint does not cover; the
    checkpoint is moved on to the verified end (also built by the first report over a verifying chain)."""
    store = sink if isinstance(sink, AuditCheckpointStore) else None
    where = sink.location
    cp = audit_checkpoint.load(store, sealer, where) if store is not None else None
    if cp is not None:
        got = _incremental(sink.entries(), sealer, filt, limit, cp)
        if got is not None:
            rep, moved = got
            if store is not None and moved.records != cp.records:
                audit_checkpoint.save(store, moved, sealer)
            return rep
        log.warning("audit chain %s differs from its verified checkpoint (%d records): verifying it whole",
                    where, cp.records)
    rep, fresh = _whole(sink.entries(), sealer, filt, limit, cp.head_sha256 if cp else None, where)
    if store is not None and fresh is not None:
        audit_checkpoint.save(store, fresh, sealer)
    return rep


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
