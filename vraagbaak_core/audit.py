"""The tamper-evident access log (NEN 7513 fields, as mapped by Logius "Logboek dataverwerkingen").

Append-only JSON lines. Every record carries ``prev_sha256`` (the ``sha256`` of the record before it;
64 zeros for the first) and its own ``sha256`` over its canonical JSON without that field, so an edited,
removed, reordered or torn record breaks the chain and :func:`verify_chain` names the first break.

Appends are safe across threads and processes (several API replicas on one volume): the file is locked
with ``flock``, the last record's hash is read under the lock, the line is written with one ``write`` and
``fsync``-ed before the lock is released.

Never stored: document text, chunk text, answers. The question text is stored only when
``audit.store_question_text`` is on (the default, because NEN 7513 asks that searches be recorded; the
log is then as sensitive as the data itself).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from vraagbaak_core.settings import Settings

GENESIS = "0" * 64

Action = Literal["C", "R", "U", "D", "E"]
Outcome = Literal["success", "failure", "refused"]
ObjectType = Literal["document", "chunk", "audit-log", "endpoint", "person", "answer", "feedback"]
EventType = Literal[
    "chat.question",
    "document.ingest",
    "document.update",
    "document.delete",
    "auth.failure",
    "egress.refused",
    "audit.read",
    "audit.export",
    "document.view",
    "feedback.submit",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

# NEN 7513 / IHE ATNA event action codes per event type.
ACTIONS: dict[str, Action] = {
    "chat.question": "R",  # a search whose results (document chunks) were shown to the user
    "document.ingest": "C",
    "document.update": "U",
    "document.delete": "D",
    "auth.failure": "E",
    "egress.refused": "E",
    "audit.read": "R",
    "audit.export": "R",
    "document.view": "R",  # a staff member opened a document's original (the cited source)
    "feedback.submit": "C",
}

DEFAULT_PURPOSE: dict[str, str] = {
    "chat.question": "zorgverlening",
    "document.ingest": "beheer",
    "document.update": "beheer",
    "document.delete": "beheer",
    "auth.failure": "beveiliging",
    "egress.refused": "beveiliging",
    "audit.read": "audit",
    "audit.export": "audit",
    "document.view": "zorgverlening",
    "feedback.submit": "kwaliteit",
}

REQUIRED_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "action",
    "timestamp",
    "outcome",
    "outcome_reason",
    "user_id",
    "role",
    "purpose_of_use",
    "network_access_point",
    "objects",
    "audit_source_id",
    "prev_sha256",
    "sha256",
)


@dataclass(frozen=True)
class AuditObject:
    """An object an event touched: a document (with its classification), a chunk, an endpoint, ..."""

    type: ObjectType
    id: str
    classification: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"type": self.type, "id": self.id}
        if self.classification is not None:
            out["classification"] = self.classification
        return out


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTF-8, without the ``sha256`` field."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds: ``2025-03-01T09:30:12.345Z``."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _last_hash(fd: int) -> tuple[str, bool]:
    """(sha256 of the last complete record, whether the file ends in a torn line). Caller holds the lock."""
    size = os.fstat(fd).st_size
    if size == 0:
        return GENESIS, False
    block = 8192
    end = size
    tail = b""
    while end > 0:
        start = max(0, end - block)
        tail = os.pread(fd, end - start, start) + tail
        end = start
        # need the last newline-terminated line: the text between the 2nd-last and last "\n"
        body = tail[:-1] if tail.endswith(b"\n") else tail
        if b"\n" in body or end == 0:
            break
    torn = not tail.endswith(b"\n")
    lines = tail.split(b"\n")
    if torn:
        lines = lines[:-1]  # the partial line is not a record
    for raw in reversed(lines):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("sha256"), str):
            return str(rec["sha256"]), torn
    if end > 0:  # the tail had no parseable record: scan the whole file
        with open(fd, "rb", closefd=False) as fh:
            fh.seek(0)
            last = GENESIS
            for raw in fh:
                if raw.endswith(b"\n"):
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and isinstance(rec.get("sha256"), str):
                        last = str(rec["sha256"])
            return last, torn
    return GENESIS, torn


class AuditLog:
    """Appends chained records to one JSON-lines file; typed helpers per event type."""

    def __init__(
        self, path: Path | str, source_id: str = "vraagbaak", store_question_text: bool = True
    ) -> None:
        self.path = Path(path)
        self.source_id = source_id
        self.store_question_text = store_question_text
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLog:
        return cls(
            settings.resolve(settings.audit.path),
            source_id=settings.audit.source_id,
            store_question_text=settings.audit.store_question_text,
        )

    # --- the one writer ---

    def record(
        self,
        event_type: EventType,
        *,
        outcome: Outcome = "success",
        reason: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        purpose_of_use: str | None = None,
        network_access_point: str | None = None,
        objects: Iterable[AuditObject] = (),
        question: str | None = None,
        trace_id: str | None = None,
        action: Action | None = None,
    ) -> dict[str, Any]:
        """Append one record and return it (with its hashes)."""
        if event_type not in ACTIONS:
            raise ValueError(f"unknown audit event type {event_type!r}; allowed: {', '.join(EVENT_TYPES)}")
        rec: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "action": action or ACTIONS[event_type],
            "timestamp": utc_timestamp(),
            "outcome": outcome,
            "outcome_reason": reason,
            "user_id": user_id,
            "role": role,
            "purpose_of_use": purpose_of_use or DEFAULT_PURPOSE[event_type],
            "network_access_point": network_access_point,
            "objects": [o.to_json() for o in objects],
            "audit_source_id": self.source_id,
        }
        if trace_id is not None:
            rec["trace_id"] = trace_id
        if question is not None and self.store_question_text:
            rec["question"] = question
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                prev, torn = _last_hash(fd)
                rec["prev_sha256"] = prev
                rec["sha256"] = record_hash(rec)
                line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
                data = (b"\n" if torn else b"") + line.encode("utf-8")
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the lock
        return rec

    # --- typed helpers, one per event type ---

    def chat_question(
        self,
        *,
        user_id: str,
        role: str | None,
        question: str,
        documents: Sequence[tuple[str, str | None]],
        chunk_ids: Sequence[str],
        network_access_point: str | None,
        outcome: Outcome = "success",
        reason: str | None = None,
        purpose_of_use: str = "zorgverlening",
        trace_id: str | None = None,
    ) -> dict[str, Any]:
        """A staff question: the ids of the documents (with classification) and chunks shown; no text."""
        objs = [AuditObject("document", d, c) for d, c in documents]
        objs += [AuditObject("chunk", c) for c in chunk_ids]
        return self.record(
            "chat.question",
            outcome=outcome,
            reason=reason,
            user_id=user_id,
            role=role,
            purpose_of_use=purpose_of_use,
            network_access_point=network_access_point,
            objects=objs,
            question=question,
            trace_id=trace_id,
        )

    def document_change(
        self,
        event_type: Literal["document.ingest", "document.update", "document.delete"],
        *,
        document_id: str,
        classification: str | None,
        user_id: str | None,
        role: str | None,
        network_access_point: str | None = None,
        outcome: Outcome = "success",
        reason: str | None = None,
        trace_id: str | None = None,
    ) -> dict[str, Any]:
        """An ingest (C), update (U) or erasure (D) of one document."""
        return self.record(
            event_type,
            outcome=outcome,
            reason=reason,
            user_id=user_id,
            role=role,
            network_access_point=network_access_point,
            objects=[AuditObject("document", document_id, classification)],
            trace_id=trace_id,
        )

    def document_view(
        self,
        *,
        document_id: str,
        classification: str | None,
        user_id: str,
        network_access_point: str | None,
        outcome: Outcome = "success",
        reason: str | None = None,
    ) -> dict[str, Any]:
        """A staff member opened (or was refused) a document's original: its id only."""
        return self.record(
            "document.view", outcome=outcome, reason=reason, user_id=user_id, role="staff",
            network_access_point=network_access_point,
            objects=[AuditObject("document", document_id, classification)],
        )

    def feedback_submit(
        self, *, answer_id: str, feedback_id: str, user_id: str, network_access_point: str | None
    ) -> dict[str, Any]:
        """Feedback on an answer: the answer and feedback ids only (never the comment)."""
        return self.record(
            "feedback.submit", user_id=user_id, role="staff", network_access_point=network_access_point,
            objects=[AuditObject("answer", answer_id), AuditObject("feedback", feedback_id)],
        )

    def auth_failure(
        self,
        *,
        reason: str,
        network_access_point: str | None,
        user_id: str | None = None,
        trace_id: str | None = None,
    ) -> dict[str, Any]:
        return self.record(
            "auth.failure",
            outcome="failure",
            reason=reason,
            user_id=user_id,
            network_access_point=network_access_point,
            trace_id=trace_id,
        )

    def egress_refused(self, destination: str, reason: str, kind: str = "connect") -> dict[str, Any]:
        return self.record(
            "egress.refused",
            outcome="refused",
            reason=reason,
            user_id=f"system:{self.source_id}",
            role="system",
            network_access_point=None,
            objects=[AuditObject("endpoint", f"{kind}:{destination}")],
        )

    def audit_access(
        self,
        event_type: Literal["audit.read", "audit.export"],
        *,
        user_id: str,
        role: str | None = "auditor",
        network_access_point: str | None,
        subjects: Iterable[AuditObject] = (),
        outcome: Outcome = "success",
        reason: str | None = None,
        log_id: str | None = None,
    ) -> dict[str, Any]:
        """A read (verify) or export of the audit log itself, naming what was asked for."""
        objs = [AuditObject("audit-log", log_id or str(self.path)), *subjects]
        return self.record(
            event_type,
            outcome=outcome,
            reason=reason,
            user_id=user_id,
            role=role,
            network_access_point=network_access_point,
            objects=objs,
        )

    # --- reading ---

    def export(
        self,
        *,
        user: str | None = None,
        document: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str,
        actor_role: str | None = "auditor",
        network_access_point: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records for one person and/or one document in a time window; the export is itself audited.

        The ``audit.export`` record is written before anything is returned, and only records that
        existed before it are exported.
        """
        size = self.path.stat().st_size if self.path.exists() else 0
        subjects: list[AuditObject] = []
        if user is not None:
            subjects.append(AuditObject("person", user))
        if document is not None:
            subjects.append(AuditObject("document", document))
        window = f"since={since.isoformat() if since else '-'} until={until.isoformat() if until else '-'}"
        self.audit_access(
            "audit.export",
            user_id=actor,
            role=actor_role,
            network_access_point=network_access_point,
            subjects=subjects,
            reason=window,
        )
        return (
            r for r in read_records(self.path, limit_bytes=size) if matches(r, user, document, since, until)
        )

    def count_events(self, event_type: str) -> int:
        if not self.path.exists():
            return 0
        return sum(1 for r in read_records(self.path) if r.get("event_type") == event_type)


def read_records(path: Path, limit_bytes: int | None = None) -> Iterator[dict[str, Any]]:
    """The parseable, complete records of a log (a torn last line is skipped)."""
    with open(path, "rb") as fh:
        data = fh.read() if limit_bytes is None else fh.read(limit_bytes)
    for raw in data.split(b"\n")[:-1] if data else []:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec


def matches(
    rec: Mapping[str, Any],
    user: str | None,
    document: str | None,
    since: datetime | None,
    until: datetime | None,
) -> bool:
    if user is not None and rec.get("user_id") != user:
        return False
    if document is not None and not any(
        o.get("type") == "document" and o.get("id") == document for o in rec.get("objects") or []
    ):
        return False
    if since is not None or until is not None:
        try:
            ts = parse_timestamp(str(rec.get("timestamp")))
        except ValueError:
            return False
        if since is not None and ts < _aware(since):
            return False
        if until is not None and ts > _aware(until):
            return False
    return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


# --- verification ---


@dataclass(frozen=True)
class ChainError:
    index: int  # 0-based record index
    line: int  # 1-based line number in the file
    kind: Literal["edited", "removed", "reordered", "truncated", "unreadable", "missing-head"]
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    head_sha256: str
    first_error: ChainError | None = None


def verify_chain(path: Path | str, expect_head: str | None = None) -> VerifyResult:
    """Check the whole chain and report the first edited, removed, reordered or truncated record.

    A hash chain alone cannot show that *complete* records were cut off the end; pass the head hash
    noted at an earlier verification as ``expect_head`` to prove the log still contains it.
    """
    data = Path(path).read_bytes()
    if not data:
        return _with_head(VerifyResult(True, 0, GENESIS), expect_head, set())
    lines = data.split(b"\n")
    torn_tail = lines[-1] != b""
    complete = lines[:-1]

    parsed: list[dict[str, Any] | None] = []
    for raw in complete:
        try:
            rec = json.loads(raw)
        except ValueError:
            rec = None
        parsed.append(rec if isinstance(rec, dict) else None)
    positions = {str(r.get("sha256")): i for i, r in enumerate(parsed) if r is not None}

    prev = GENESIS
    seen: set[str] = set()
    for i, rec in enumerate(parsed):
        line = i + 1
        if rec is None:
            return VerifyResult(False, i, prev, ChainError(i, line, "unreadable", "not a JSON record"))
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        if missing:
            return VerifyResult(
                False, i, prev, ChainError(i, line, "edited", f"missing fields: {', '.join(missing)}")
            )
        if record_hash(rec) != rec["sha256"]:
            return VerifyResult(
                False,
                i,
                prev,
                ChainError(i, line, "edited", "content does not match its sha256 (record edited)"),
            )
        if rec["prev_sha256"] != prev:
            return VerifyResult(False, i, prev, _link_error(i, line, rec["prev_sha256"], prev, positions))
        prev = str(rec["sha256"])
        seen.add(prev)
    if torn_tail:
        n = len(parsed)
        return VerifyResult(
            False,
            n,
            prev,
            ChainError(n, n + 1, "truncated", "last line is a partial record (truncated or torn write)"),
        )
    return _with_head(VerifyResult(True, len(parsed), prev), expect_head, seen)


def _link_error(i: int, line: int, got: str, expected: str, positions: dict[str, int]) -> ChainError:
    where = positions.get(got)
    if i == 0:
        return ChainError(
            i, line, "removed", "first record does not start the chain: records before it were removed"
        )
    if where is not None and where > i:
        return ChainError(
            i, line, "reordered", f"its predecessor is the record on line {where + 1}, which comes later"
        )
    if where is not None and where < i - 1:
        return ChainError(
            i, line, "removed", f"records between line {where + 1} and line {line} were removed or reordered"
        )
    if expected in positions and positions[expected] > i:
        return ChainError(i, line, "reordered", f"the record that should follow line {i} appears later")
    return ChainError(i, line, "removed", "the record before this one was removed (previous hash unknown)")


def _with_head(res: VerifyResult, expect_head: str | None, seen: set[str]) -> VerifyResult:
    if expect_head is None or expect_head in seen or expect_head == GENESIS:
        return res
    err = ChainError(
        res.records,
        res.records + 1,
        "missing-head",
        f"the log no longer contains record {expect_head}: records were cut off the end",
    )
    return VerifyResult(False, res.records, res.head_sha256, err)
