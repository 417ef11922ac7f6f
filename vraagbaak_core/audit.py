"""The tamper-evident access log (NEN 7513 fields, as mapped by Logius "Logboek dataverwerkingen").

Records are JSON objects in one chain. Every record carries ``prev_sha256`` (the ``sha256`` of the record
before it; 64 zeros for the first) and its own ``sha256`` over its canonical JSON without that field, so
an edited, removed, reordered or torn record breaks the chain and :func:`verify_chain` names every break.
With a key (``audit.hmac_key`` / ``audit.hmac_key_file``, a secret never kept in git) the ``sha256`` field
is an HMAC-SHA256 under that key (``chain: "hmac-sha256"`` and the key's ``key_id`` are in the record), so
someone who can write the log but does not hold the key cannot rebuild a consistent chain.

Where the chain lives is an :class:`~vraagbaak_core.ports.AuditSink`: :class:`FileAuditSink` (one JSON
line per record; appends are locked with ``flock`` across threads and processes and ``fsync``-ed) for the
embedded default, or ``vraagbaak_core.audit_pg.PostgresAuditSink`` (one chain for every API replica,
serialised by a transaction-level advisory lock). ``vraagbaak_core.audit_factory.build_audit_sink`` picks
one from the settings; an
optional syslog forwarder (RFC 5424) sends a second copy of each record to the institution's SIEM.

Writing fails closed: a record that cannot be stored raises :class:`AuditWriteError`, and callers refuse
the request (the API answers 503 and shows nothing).

Never stored: document text, chunk text, answers. The question text is stored as ``audit.question_text``
says: ``redacted`` (the default; serving passes it through the patient-data guard first and stores it with
typed placeholders and their counts, ``question_redactions``), ``none``, or ``full``. This module stores
what it is given: it cannot redact (the guard lives in ``ingest``), so every caller that passes a question
goes through ``serving.staff.question_guard``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import orjson

from vraagbaak_core.types import AuditEntry

if TYPE_CHECKING:
    from vraagbaak_core.ports import AuditSink
    from vraagbaak_core.settings import Settings

KEY_ENV = "VRAAGBAAK_AUDIT__HMAC_KEY"
KEY_FILE_ENV = "VRAAGBAAK_AUDIT__HMAC_KEY_FILE"
MIN_KEY_BYTES = 16

GENESIS = "0" * 64

Action = Literal["C", "R", "U", "D", "E"]
Outcome = Literal["success", "failure", "refused", "aborted"]
ObjectType = Literal["document", "chunk", "audit-log", "endpoint", "person", "answer", "feedback"]
EventType = Literal[
    "chat.access",
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
    "chat.access": "R",  # the sources a staff question is about to be shown, stored before any of them leaves
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
    "chat.access": "zorgverlening",
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
    """The unkeyed hash (chains written without a key)."""
    return hashlib.sha256(canonical(record)).hexdigest()


class AuditWriteError(OSError):
    """A record could not be stored. Callers fail closed: no answer without its record."""


class AuditKeyError(ValueError):
    """The HMAC key is missing, too short or unreadable."""


@dataclass(frozen=True)
class Sealer:
    """Computes a record's ``sha256`` field: HMAC-SHA256 under the key, or plain SHA-256 without one."""

    key: bytes | None = None

    key_id: str | None = field(init=False, default=None, compare=False)
    """A fingerprint that names the key without revealing it (so verify can say 'wrong key')."""

    def __post_init__(self) -> None:
        if self.key is not None and len(self.key) < MIN_KEY_BYTES:
            raise AuditKeyError(f"the audit HMAC key must be at least {MIN_KEY_BYTES} bytes")
        if self.key is not None:
            kid = hmac.digest(self.key, b"vraagbaak-audit-key-id", "sha256").hex()[:16]
            object.__setattr__(self, "key_id", kid)

    @property
    def keyed(self) -> bool:
        return self.key is not None

    def stamp(self, rec: dict[str, Any]) -> None:
        """Mark the record with the chain mode (before ``prev_sha256`` and the seal are added)."""
        if self.key is not None:
            rec["chain"] = "hmac-sha256"
            rec["key_id"] = self.key_id

    def seal(self, rec: Mapping[str, Any]) -> str:
        if self.key is None:
            return record_hash(rec)
        return hmac.new(self.key, canonical(rec), hashlib.sha256).hexdigest()

    def _seal_bytes(self, body: bytes) -> str:
        if self.key is None:
            return hashlib.sha256(body).hexdigest()
        return hmac.digest(self.key, body, "sha256").hex()

    def matches(self, rec: dict[str, Any], expected: str) -> bool:
        """Whether ``expected`` is the seal of ``rec``. Tries orjson's canonical bytes first (several times
        faster, and the same bytes for every record this project writes), then the reference
        :func:`canonical`: a record is only ever reported edited when the reference bytes disagree.
        ``rec`` is left as it was (its ``sha256`` is taken out for the fast bytes and put back)."""
        own = rec.pop("sha256", None)
        try:
            fast = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            fast = b""
        finally:
            if own is not None:
                rec["sha256"] = own
        if fast and hmac.compare_digest(self._seal_bytes(fast), expected):
            return True
        return hmac.compare_digest(self.seal(rec), expected)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        a = settings.audit
        key = a.hmac_key.get_secret_value() if a.hmac_key is not None else None
        path = settings.resolve(a.hmac_key_file) if a.hmac_key_file is not None else None
        return cls.load(key, path)

    @classmethod
    def from_env(cls) -> Sealer:
        """The key from the environment (``VRAAGBAAK_AUDIT__HMAC_KEY`` or ``..._KEY_FILE``): what a
        process that has no settings object (a parser worker) uses, the same variables as the settings."""
        key_file = os.environ.get(KEY_FILE_ENV)
        return cls.load(os.environ.get(KEY_ENV), Path(key_file) if key_file else None)

    @classmethod
    def load(cls, key: str | None, key_file: Path | None) -> Sealer:
        if key_file is not None:
            try:
                raw = key_file.read_bytes().strip()
            except OSError as err:
                raise AuditKeyError(f"cannot read the audit HMAC key file {key_file}: {err}") from None
            return cls(raw)
        if key:
            return cls(key.encode("utf-8"))
        return cls(None)


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds: ``2025-03-01T09:30:12.345Z``."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FileAuditSink:
    """The chain as JSON lines in one file (the embedded default; several processes may share it)."""

    def __init__(self, path: Path | str, min_free_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return str(self.path.resolve())

    def append(self, record: dict[str, Any], seal: Callable[[Mapping[str, Any]], str]) -> dict[str, Any]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    prev, torn = _last_hash(fd)
                    record["prev_sha256"] = prev
                    record["sha256"] = seal(record)
                    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                    data = (b"\n" if torn else b"") + line.encode("utf-8")
                    written = os.write(fd, data)
                    if written != len(data):  # a short write on a full disk: cut the torn piece off again
                        os.ftruncate(fd, os.fstat(fd).st_size - written)
                        raise OSError(28, f"short write ({written} of {len(data)} bytes)")
                    os.fsync(fd)
                finally:
                    os.close(fd)  # closing releases the lock
        except OSError as err:
            raise AuditWriteError(err.errno, f"cannot write the audit log {self.path}: {err.strerror or err}") from err
        return record

    def check_writable(self) -> None:
        """Fail before an answer is produced when a record could not be stored (read-only, full disk)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                st = os.fstatvfs(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise AuditWriteError(err.errno, f"cannot write the audit log {self.path}: {err.strerror or err}") from err
        free = st.f_bavail * st.f_frsize
        if free < self.min_free_bytes:
            raise AuditWriteError(
                28, f"the audit log's file system has {free} bytes free (needs {self.min_free_bytes})"
            )

    def entries(self, upto: int | None = None) -> Iterator[AuditEntry]:
        """Every stored line in order; ``upto`` is a :meth:`mark` (entries that existed then)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            data = fh.read() if upto is None else fh.read(upto)
        if not data:
            return
        lines = data.decode("utf-8", "replace").split("\n")  # "\n" is one byte, never inside a UTF-8 sequence
        for i, raw in enumerate(lines[:-1], 1):
            yield AuditEntry(i, raw)
        if lines[-1] != "" and upto is None:
            yield AuditEntry(len(lines), lines[-1], complete=False)

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    @property
    def checkpoint_path(self) -> Path:
        """The access report's sealed checkpoint of the verified prefix (``audit_checkpoint``)."""
        return self.path.with_name(self.path.name + ".checkpoint")

    def load_checkpoint(self) -> str | None:
        try:
            return self.checkpoint_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def save_checkpoint(self, text: str) -> None:
        tmp = self.checkpoint_path.with_name(f"{self.checkpoint_path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, self.checkpoint_path)

    def close(self) -> None:
        return None


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
    """Appends chained records to one audit sink; typed helpers per event type.

    ``AuditLog(path)`` writes a file chain (the key, if any, from the environment);
    :meth:`from_settings` builds the configured sink, key and forwarder.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        source_id: str = "vraagbaak",
        store_question_text: bool = True,
        *,
        sink: AuditSink | None = None,
        sealer: Sealer | None = None,
        forward: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        if sink is None:
            if path is None:
                raise ValueError("give an audit log path or a sink")
            sink = FileAuditSink(path)
        self.sink: AuditSink = sink
        self.source_id = source_id
        self.store_question_text = store_question_text
        self.sealer = sealer if sealer is not None else Sealer.from_env()
        self.forward = forward

    @property
    def path(self) -> Path:
        """The file of a file sink (for messages and the file-only tools)."""
        p = getattr(self.sink, "path", None)
        if not isinstance(p, Path):
            raise AttributeError(f"the audit sink {self.sink.location} is not a file")
        return p

    @property
    def location(self) -> str:
        return self.sink.location

    def check_writable(self) -> None:
        """Raise :class:`AuditWriteError` now if a record could not be stored (fail closed early)."""
        self.sink.check_writable()

    def head(self) -> tuple[int, str]:
        """(records, head hash) of the chain as stored; a read, not a verification."""
        n, last = 0, GENESIS
        for e in self.sink.entries():
            if not e.complete:
                continue
            try:
                rec = json.loads(e.raw)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("sha256"), str):
                n, last = n + 1, str(rec["sha256"])
        return n, last

    def close(self) -> None:
        self.sink.close()

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
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one record and return it (with its hashes); :class:`AuditWriteError` if it cannot be stored.

        ``extra`` adds event-specific fields (never the NEN 7513 ones, which the arguments set)."""
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
        for k, v in (extra or {}).items():
            if k in rec or k in ("prev_sha256", "sha256", "chain", "key_id", "question", "trace_id"):
                raise ValueError(f"extra audit field {k!r} would overwrite a standard field")
            rec[k] = v
        if trace_id is not None:
            rec["trace_id"] = trace_id
        if question is not None and self.store_question_text:
            rec["question"] = question
        self.sealer.stamp(rec)
        stored = self.sink.append(rec, self.sealer.seal)
        if self.forward is not None:
            self.forward(stored)  # a second copy; never fails the request (the forwarder logs its errors)
        return stored

    # --- typed helpers, one per event type ---

    def chat_access(
        self,
        *,
        user_id: str,
        role: str | None,
        question: str | None,
        documents: Sequence[tuple[str, str | None]],
        chunk_ids: Sequence[str],
        network_access_point: str | None,
        purpose_of_use: str = "zorgverlening",
        trace_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The access record of a staff question, stored before the first source text leaves: the ids of
        the documents (with classification) and chunks the answer may show. Its outcome follows as a
        ``chat.question`` record whose ``access_event_id`` names this record's ``event_id``; an access
        record without one is a request that never ended (the process died mid-answer)."""
        objs = [AuditObject("document", d, c) for d, c in documents]
        objs += [AuditObject("chunk", c) for c in chunk_ids]
        return self.record(
            "chat.access", reason="sources about to be shown", user_id=user_id, role=role,
            purpose_of_use=purpose_of_use, network_access_point=network_access_point, objects=objs,
            question=question, trace_id=trace_id, extra=extra,
        )

    def chat_question(
        self,
        *,
        user_id: str,
        role: str | None,
        question: str | None,
        documents: Sequence[tuple[str, str | None]],
        chunk_ids: Sequence[str],
        network_access_point: str | None,
        outcome: Outcome = "success",
        reason: str | None = None,
        purpose_of_use: str = "zorgverlening",
        trace_id: str | None = None,
        access_event_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A staff question's outcome: the ids of the documents (with classification) and chunks shown; no
        text. ``access_event_id`` links it to the ``chat.access`` record written before the answer."""
        objs = [AuditObject("document", d, c) for d, c in documents]
        objs += [AuditObject("chunk", c) for c in chunk_ids]
        more = dict(extra or {})
        if access_event_id is not None:
            more["access_event_id"] = access_event_id
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
            extra=more,
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
        count: int | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
    ) -> dict[str, Any]:
        """One failed authentication, or (with ``count``) every failure of one address in one window."""
        extra: dict[str, Any] = {}
        if count is not None:
            extra = {"count": count, "window_start": window_start, "window_end": window_end}
        return self.record(
            "auth.failure",
            outcome="failure",
            reason=reason,
            user_id=user_id,
            network_access_point=network_access_point,
            trace_id=trace_id,
            extra=extra,
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
        objs = [AuditObject("audit-log", log_id or self.sink.location), *subjects]
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
        upto = self.sink.mark()
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
        return _with_outcomes(self.records(upto), lambda r: matches(r, user, document, since, until))

    def records(self, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """The parseable, complete records in chain order (up to a :meth:`AuditSink.mark`)."""
        for e in self.sink.entries(upto):
            if not e.complete:
                continue
            try:
                rec = json.loads(e.raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec

    def count_events(self, event_type: str) -> int:
        return sum(1 for r in self.records() if r.get("event_type") == event_type)

    def verify(self, expect_head: str | None = None) -> VerifyResult:
        return verify_entries(self.sink.entries(), self.sealer, expect_head)


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


def _with_outcomes(
    records: Iterable[dict[str, Any]], match: Callable[[dict[str, Any]], bool]
) -> Iterator[dict[str, Any]]:
    """The matching records, and with each matched ``chat.access`` record the outcome linked to it."""
    wanted: set[str] = set()
    for r in records:
        if match(r):
            if r.get("event_type") == "chat.access":
                wanted.add(str(r.get("event_id")))
            yield r
        elif r.get("access_event_id") is not None and str(r.get("access_event_id")) in wanted:
            yield r


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

ErrorKind = Literal[
    "edited", "removed", "reordered", "truncated", "unreadable", "missing-head", "unkeyed", "wrong-key", "no-key",
    "unlinked",
]


@dataclass(frozen=True)
class ChainError:
    index: int  # 0-based entry index
    line: int  # 1-based line number in the file (the sequence number in a database)
    kind: ErrorKind
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int  # records read (readable ones)
    head_sha256: str  # the last record's hash
    first_error: ChainError | None = None
    errors: tuple[ChainError, ...] = ()  # every broken place, in order
    keyed: bool = False  # HMAC records checked under the configured key
    location: str = ""
    intact: int = 0  # records before the first broken place (all of them when ok)
    # chat.access records with no chat.question outcome after them: requests that never ended (a crash
    # mid-answer) or are still running; their event ids
    open_access: tuple[str, ...] = ()


def verify_chain(
    path: Path | str, expect_head: str | None = None, sealer: Sealer | None = None
) -> VerifyResult:
    """Verify a file chain whole (see :func:`verify_entries`)."""
    sink = FileAuditSink(path)
    if not sink.path.is_file():
        raise FileNotFoundError(f"audit log not found: {path}")
    res = verify_entries(sink.entries(), sealer if sealer is not None else Sealer.from_env(), expect_head)
    return _located(res, sink.location)


def _located(res: VerifyResult, location: str) -> VerifyResult:
    return replace(res, location=location)


@dataclass
class _Walk:
    errors: list[ChainError] = field(default_factory=list)
    no_key_reported: bool = False


@dataclass
class _PendingLink:
    """A broken link, classified once every record's hash is known (it may point to a later record)."""

    index: int
    line: int
    got: str
    expected: str


class ChainWalk:
    """One streaming pass over a chain's entries, in order: every seal, link and access/outcome pair.

    Records are checked as they are read and then dropped (only their hashes and line numbers are kept, to
    name a broken link's kind at the end), so a long chain costs no memory per record beyond those.
    ``head``, ``records`` and ``open_access`` continue a walk from a verified prefix (the access report's
    checkpoint, :mod:`vraagbaak_core.audit_checkpoint`): its entries are then not walked again.
    """

    def __init__(self, sealer: Sealer, *, head: str = GENESIS, records: int = 0,
                 open_access: Iterable[str] = ()) -> None:
        self.sealer = sealer
        self.walk = _Walk()
        self._errors: list[ChainError | _PendingLink] = []
        self.prev: str | None = head  # None: the predecessor was unreadable (already reported)
        self.head = head
        self.records = records
        self.index = records  # entries walked (a verified prefix has no unreadable entries)
        self.access: dict[str, bool] = dict.fromkeys(open_access, False)  # chat.access id -> outcome seen
        self.seen: set[str] = set()
        self._hashes: list[str | None] = []
        self._lines: list[int] = []
        self._intact: int | None = None

    @property
    def clean(self) -> bool:
        return not self._errors

    def _error(self, e: ChainError | _PendingLink, readable_before: int) -> None:
        if self._intact is None:
            self._intact = readable_before
        self._errors.append(e)

    def step(self, line: int, rec: dict[str, Any] | None, complete: bool = True) -> None:
        i, before = self.index, self.records
        self.index += 1
        self._lines.append(line)
        self._hashes.append(None if rec is None else str(rec.get("sha256")))
        if not complete:
            self._error(ChainError(i, line, "truncated", "last line is a partial record (truncated or torn write)"),
                        before)
            return
        if rec is None:
            self._error(ChainError(i, line, "unreadable", "not a JSON record"), before)
            self.prev = None
            return
        self.records += 1
        n = len(self.walk.errors)
        _check_link(i, line, rec, self.access, self.walk.errors)
        own = rec.get("sha256")
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        if missing:
            self.walk.errors.append(ChainError(i, line, "edited", f"missing fields: {', '.join(missing)}"))
        else:
            _check_seal(i, line, rec, self.sealer, self.walk)
        for e in self.walk.errors[n:]:
            self._error(e, before)
        del self.walk.errors[n:]
        if not missing and self.prev is not None and rec["prev_sha256"] != self.prev:
            self._error(_PendingLink(i, line, str(rec["prev_sha256"]), self.prev), before)
        self.prev = own if isinstance(own, str) else None
        if self.prev is not None:
            self.seen.add(self.prev)
            self.head = self.prev

    def result(self, expect_head: str | None = None) -> VerifyResult:
        """The verification. A walk continued from a verified prefix names no broken place (it would need the
        prefix's hashes): callers use :attr:`clean` and walk the whole chain again when it is not."""
        if self._errors and len(self._lines) != self.index:
            raise ValueError("a walk continued from a checkpoint only says whether it is clean")
        positions: dict[str, int] = {}
        if any(isinstance(e, _PendingLink) for e in self._errors):
            positions = {h: k for k, h in enumerate(self._hashes) if h is not None}
        err = [e if isinstance(e, ChainError) else _link_error(e.index, e.line, e.got, e.expected, positions,
                                                                self._lines)
               for e in self._errors]
        intact = self.records if self._intact is None else self._intact
        res = VerifyResult(not err, self.records, self.head, err[0] if err else None, tuple(err), self.sealer.keyed,
                           "", intact, tuple(k for k, closed in self.access.items() if not closed))
        return _with_head(res, expect_head, self.seen)


def verify_entries(
    entries: Iterable[AuditEntry], sealer: Sealer, expect_head: str | None = None,
    on_record: Callable[[AuditEntry, dict[str, Any]], None] | None = None,
) -> VerifyResult:
    """Check the whole chain and report every edited, removed, reordered, unreadable or torn place.

    After a broken place the walk goes on from the next readable record, so one bad line does not hide
    the rest. A hash chain alone cannot show that *complete* records were cut off the end; pass the head
    hash noted earlier (``audit head``) as ``expect_head`` to prove the chain still contains it.
    ``on_record(entry, record)`` sees every readable record in the same pass (the access report).
    """
    walk = ChainWalk(sealer)
    for e in entries:
        rec: Any = None
        if e.complete:
            try:
                rec = orjson.loads(e.raw)
            except orjson.JSONDecodeError:
                rec = None
        if not isinstance(rec, dict):
            rec = None
        elif on_record is not None:
            on_record(e, rec)
        walk.step(e.position, rec, e.complete)
    return walk.result(expect_head)


def _check_link(
    i: int, line: int, rec: Mapping[str, Any], access: dict[str, bool], err: list[ChainError]
) -> None:
    """An outcome record must follow the access record it names (``access_event_id``), once."""
    if rec.get("event_type") == "chat.access":
        access[str(rec.get("event_id"))] = False
        return
    link = rec.get("access_event_id")
    if link is None:
        return
    if access.get(str(link)) is not False:
        why = "already has an outcome" if str(link) in access else "is not an earlier chat.access record"
        err.append(ChainError(i, line, "unlinked", f"its access record {link} {why}"))
        return
    access[str(link)] = True


def _check_seal(i: int, line: int, rec: dict[str, Any], sealer: Sealer, walk: _Walk) -> None:
    mode = rec.get("chain", "sha256")
    if sealer.keyed:
        if mode != "hmac-sha256":
            walk.errors.append(ChainError(
                i, line, "unkeyed", "record carries no HMAC: anyone who can write the log could have made it"
            ))
            return
        if rec.get("key_id") != sealer.key_id:
            walk.errors.append(ChainError(
                i, line, "wrong-key", f"sealed with key {rec.get('key_id')!r}, not the configured key"
            ))
            return
    elif mode == "hmac-sha256":
        if not walk.no_key_reported:
            walk.errors.append(ChainError(
                i, line, "no-key", "HMAC-sealed records: configure the audit key to verify them"
            ))
            walk.no_key_reported = True
        return
    if not sealer.matches(rec, str(rec["sha256"])):
        walk.errors.append(ChainError(i, line, "edited", "content does not match its sha256 (record edited)"))


def _link_error(
    i: int, line: int, got: str, expected: str, positions: dict[str, int], lines: list[int]
) -> ChainError:
    where = positions.get(got)
    if i == 0 or got == GENESIS:
        return ChainError(
            i, line, "removed", "first record does not start the chain: records before it were removed"
        )
    if where is not None and where > i:
        return ChainError(
            i, line, "reordered", f"its predecessor is the record on line {lines[where]}, which comes later"
        )
    if where is not None and where < i - 1:
        return ChainError(
            i, line, "removed", f"records between line {lines[where]} and line {line} were removed or reordered"
        )
    if expected in positions and positions[expected] > i:
        return ChainError(i, line, "reordered", f"the record that should follow line {lines[i - 1]} appears later")
    return ChainError(i, line, "removed", "the record before this one was removed (previous hash unknown)")


def _with_head(res: VerifyResult, expect_head: str | None, seen: set[str]) -> VerifyResult:
    if expect_head is None or expect_head in seen or expect_head == GENESIS:
        return res
    err = ChainError(
        res.records,
        res.records + 1,
        "missing-head",
        f"the log no longer contains record {expect_head}: records were cut off the end (or it is another log)",
    )
    errors = (*res.errors, err)
    return replace(res, ok=False, first_error=errors[0], errors=errors)


