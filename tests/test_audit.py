"""The chained NEN 7513 audit log: every event type, verification of each kind of tampering,
concurrent appends from several processes, and the audited export."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vraagbaak_core.audit import (
    EVENT_TYPES,
    GENESIS,
    REQUIRED_FIELDS,
    AuditLog,
    canonical,
    read_records,
    record_hash,
    verify_chain,
)
from vraagbaak_core.settings import PROJECT_ROOT

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def write_every_event(log: AuditLog) -> None:
    acc = log.chat_access(
        user_id="u-anna", role="staff", question="Wat zijn de bezoektijden op de IC?",
        documents=[("doc-bezoek", "intern"), ("doc-hygiene", "openbaar")],
        chunk_ids=["doc-bezoek#3", "doc-hygiene#0"], network_access_point="10.1.2.3",
    )
    log.chat_question(
        access_event_id=acc["event_id"],
        user_id="u-anna",
        role="staff",
        question="Wat zijn de bezoektijden op de IC?",
        documents=[("doc-bezoek", "intern"), ("doc-hygiene", "openbaar")],
        chunk_ids=["doc-bezoek#3", "doc-hygiene#0"],
        network_access_point="10.1.2.3",
        trace_id="t-1",
    )
    log.document_change(
        "document.ingest", document_id="doc-bezoek", classification="intern", user_id="u-it", role="ingest"
    )
    log.document_change(
        "document.update", document_id="doc-bezoek", classification="intern", user_id="u-it", role="ingest"
    )
    log.document_change(
        "document.delete",
        document_id="doc-oud",
        classification="vertrouwelijk",
        user_id="u-it",
        role="ingest",
        network_access_point="10.1.2.9",
    )
    log.auth_failure(reason="invalid API key", network_access_point="10.6.6.6")
    log.document_view(document_id="doc-protocol", classification="intern", user_id="u-bram",
                      network_access_point="10.1.2.3")
    log.feedback_submit(answer_id="chatcmpl-1", feedback_id="fb-1", user_id="u-bram", network_access_point="10.1.2.3")
    log.egress_refused("93.184.216.34:443", "egress refused: connection to 93.184.216.34:443 ...")
    log.audit_access("audit.read", user_id="os:auditor", network_access_point="local:host")
    list(log.export(user="u-anna", actor="os:auditor"))


def test_every_event_type_produces_a_complete_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", source_id="vraagbaak-test")
    write_every_event(log)
    records = list(read_records(log.path))
    assert sorted({r["event_type"] for r in records}) == sorted(EVENT_TYPES)
    for rec in records:
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        assert not missing, (rec["event_type"], missing)
        assert uuid.UUID(rec["event_id"]).version == 4
        assert TS.match(rec["timestamp"]), rec["timestamp"]
        assert rec["audit_source_id"] == "vraagbaak-test"
        assert rec["outcome"] in ("success", "failure", "refused")
        assert rec["purpose_of_use"]
        assert rec["sha256"] == record_hash(rec)
    by_type = {r["event_type"]: r for r in records}
    assert {t: r["action"] for t, r in by_type.items()} == {
        "chat.access": "R",
        "chat.question": "R",
        "document.ingest": "C",
        "document.update": "U",
        "document.delete": "D",
        "auth.failure": "E",
        "egress.refused": "E",
        "audit.read": "R",
        "audit.export": "R",
        "document.view": "R",
        "feedback.submit": "C",
    }
    chat = by_type["chat.question"]
    assert chat["objects"] == [
        {"type": "document", "id": "doc-bezoek", "classification": "intern"},
        {"type": "document", "id": "doc-hygiene", "classification": "openbaar"},
        {"type": "chunk", "id": "doc-bezoek#3"},
        {"type": "chunk", "id": "doc-hygiene#0"},
    ]
    assert chat["question"] == "Wat zijn de bezoektijden op de IC?"
    assert chat["purpose_of_use"] == "zorgverlening" and chat["network_access_point"] == "10.1.2.3"
    assert by_type["document.delete"]["objects"][0]["classification"] == "vertrouwelijk"
    assert by_type["auth.failure"]["outcome"] == "failure"
    assert by_type["egress.refused"]["outcome"] == "refused"
    assert by_type["audit.export"]["objects"] == [
        {"type": "audit-log", "id": str(log.path)},
        {"type": "person", "id": "u-anna"},
    ]
    assert records[0]["prev_sha256"] == GENESIS
    assert verify_chain(log.path).ok


def test_question_text_is_a_setting(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", store_question_text=False)
    rec = log.chat_question(
        user_id="u", role="staff", question="geheim?", documents=[], chunk_ids=[], network_access_point=None
    )
    assert "question" not in rec
    assert "geheim" not in log.path.read_text()


def test_unknown_event_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown audit event type .chat.answer.; allowed: chat.access, chat.question"):
        AuditLog(tmp_path / "a.jsonl").record("chat.answer")  # type: ignore[arg-type]


# --- verification: one test per kind of tampering ---


@pytest.fixture
def five(tmp_path: Path) -> Path:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(5):
        log.document_change(
            "document.ingest", document_id=f"doc-{i}", classification="intern", user_id="u-it", role="ingest"
        )
    return log.path


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_intact_log_verifies(five: Path) -> None:
    res = verify_chain(five)
    last = json.loads(lines_of(five)[-1])
    assert res.ok and res.records == 5 and res.first_error is None
    assert res.head_sha256 == last["sha256"]


def test_edited_record_is_caught(five: Path) -> None:
    lines = lines_of(five)
    rec = json.loads(lines[2])
    rec["user_id"] = "iemand-anders"
    lines[2] = json.dumps(rec, separators=(",", ":")) + "\n"
    five.write_text("".join(lines))
    res = verify_chain(five)
    assert not res.ok and res.intact == 2 and res.records == 5
    assert res.first_error is not None
    assert (res.first_error.line, res.first_error.kind) == (3, "edited")


def test_edited_and_rehashed_record_is_caught_by_the_next_link(five: Path) -> None:
    lines = lines_of(five)
    rec = json.loads(lines[1])
    rec["objects"][0]["id"] = "doc-vervalst"
    rec["sha256"] = record_hash(rec)  # a careful forger recomputes the record's own hash
    lines[1] = json.dumps(rec, separators=(",", ":")) + "\n"
    five.write_text("".join(lines))
    err = verify_chain(five).first_error
    assert err is not None and err.line == 3 and err.kind == "removed"


def test_deleted_record_is_caught(five: Path) -> None:
    lines = lines_of(five)
    del lines[2]
    five.write_text("".join(lines))
    err = verify_chain(five).first_error
    assert err is not None
    assert (err.line, err.kind) == (3, "removed")


def test_reordered_records_are_caught(five: Path) -> None:
    lines = lines_of(five)
    lines[1], lines[2] = lines[2], lines[1]
    five.write_text("".join(lines))
    err = verify_chain(five).first_error
    assert err is not None
    assert (err.line, err.kind) == (2, "reordered")
    assert "line 3" in err.reason


def test_truncated_record_is_caught(five: Path) -> None:
    data = five.read_bytes()
    five.write_bytes(data[: len(data) - 40])  # the last record cut mid-line
    res = verify_chain(five)
    assert not res.ok and res.records == 4 and res.intact == 4
    assert res.first_error is not None
    assert (res.first_error.line, res.first_error.kind) == (5, "truncated")


def test_removed_first_record_is_caught(five: Path) -> None:
    five.write_text("".join(lines_of(five)[1:]))
    err = verify_chain(five).first_error
    assert err is not None and (err.line, err.kind) == (1, "removed")


def test_records_cut_off_the_end_are_caught_with_the_noted_head(five: Path) -> None:
    head = verify_chain(five).head_sha256
    five.write_text("".join(lines_of(five)[:3]))
    assert verify_chain(five).ok  # a chain alone cannot see a clean cut at the end...
    res = verify_chain(five, expect_head=head)  # ...the head noted at the last verify can
    assert not res.ok and res.first_error is not None and res.first_error.kind == "missing-head"


def test_append_after_a_torn_write_keeps_the_log_parseable_and_reports_the_tear(five: Path) -> None:
    data = five.read_bytes()
    five.write_bytes(data[:-30])
    log = AuditLog(five)
    rec = log.auth_failure(reason="bad token", network_access_point="10.0.0.1")
    good = list(read_records(five))
    assert good[-1]["event_id"] == rec["event_id"]
    assert rec["prev_sha256"] == good[-2]["sha256"]  # chained to the last complete record
    err = verify_chain(five).first_error
    assert err is not None and err.line == 5 and err.kind == "unreadable"


def test_canonical_form_excludes_the_own_hash() -> None:
    rec: dict[str, Any] = {"b": 1, "a": "é", "sha256": "x"}
    assert canonical(rec) == '{"a":"é","b":1}'.encode()


# --- concurrency ---

APPENDER = textwrap.dedent(
    """
    import os, sys, threading, time
    from vraagbaak_core.audit import AuditLog
    log = AuditLog(sys.argv[1])
    open(sys.argv[1] + ".ready-" + sys.argv[2], "w").close()
    while not os.path.exists(sys.argv[1] + ".go"):  # start together, so the writers really contend
        time.sleep(0.005)
    def work(t):
        for i in range(int(sys.argv[3])):
            log.document_change("document.ingest", document_id=f"{sys.argv[2]}-{t}-{i}",
                                classification="intern", user_id=sys.argv[2], role="ingest")
    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    [t.start() for t in threads]; [t.join() for t in threads]
    """
)


def test_concurrent_appends_from_two_processes_stay_chained(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    n = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), name, str(n)], cwd=PROJECT_ROOT, env=env)
        for name in ("replica-a", "replica-b")
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{path}.ready-{n}").exists() for n in ("replica-a", "replica-b")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    Path(f"{path}.go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    res = verify_chain(path)
    assert res.ok, res.first_error
    assert res.records == 2 * 2 * n
    ids = [r["objects"][0]["id"] for r in read_records(path)]
    assert len(set(ids)) == len(ids) == 4 * n


# --- export ---


def test_export_per_person_and_per_document_is_itself_audited(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    write_every_event(log)
    before = len(list(read_records(log.path)))
    mine = list(log.export(user="u-anna", actor="os:auditor", network_access_point="local:pc1"))
    assert [r["event_type"] for r in mine] == ["chat.access", "chat.question"]  # the access, then its outcome
    doc = list(log.export(document="doc-bezoek", actor="os:auditor"))
    assert [r["event_type"] for r in doc] == ["chat.access", "chat.question", "document.ingest", "document.update"]
    records = list(read_records(log.path))
    assert len(records) == before + 2
    last = records[-1]
    assert last["event_type"] == "audit.export" and last["user_id"] == "os:auditor"
    assert {"type": "document", "id": "doc-bezoek"} in last["objects"]
    assert verify_chain(log.path).ok


def test_export_time_window(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    write_every_event(log)
    now = datetime.now(UTC)
    assert list(log.export(user="u-anna", since=now + timedelta(minutes=1), actor="a")) == []
    assert len(list(log.export(user="u-anna", since=now - timedelta(minutes=5), until=now, actor="a"))) == 2
    naive_future = (now + timedelta(hours=1)).replace(tzinfo=None)  # naive means UTC
    assert len(list(log.export(user="u-anna", until=naive_future, actor="a"))) == 2
