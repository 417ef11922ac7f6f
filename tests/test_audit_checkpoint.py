"""The access report's verified checkpoint (issue 21: the report over 100,000 records in ≤ 2 s).

Real sinks (a file, and PostgreSQL from tests/pg_server.py) and a real keyed chain. A report with a
checkpoint must equal the whole walk over the same chain; a change to the checkpointed prefix (an edit, a
truncation), a break after it and a forged checkpoint must all be reported as the whole walk reports them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from vraagbaak_core import audit_checkpoint
from vraagbaak_core.audit import AuditLog, FileAuditSink, Sealer, parse_timestamp
from vraagbaak_core.audit_pg import PostgresAuditSink
from vraagbaak_core.audit_report import AccessReport, ReportFilter, access_report, sink_report
from vraagbaak_core.ports import AuditSink

KEY = b"checkpoint-test-key-0123456789ab"
OTHER_KEY = b"someone-elses-key-0123456789abcd"


class Chain:
    """One keyed chain in one sink, with the tools to damage it as an intruder would."""

    def __init__(self, sink: AuditSink, dsn: str | None = None) -> None:
        self.sink = sink
        self.dsn = dsn
        self.sealer = Sealer(KEY)
        self.log = AuditLog(sink=sink, sealer=self.sealer)
        self.open_access: list[str] = []

    def add(self, n: int, start: int = 0) -> None:
        """Questions (an access record, then its outcome), views, failed sign-ins, an odd question text."""
        for i in range(start, start + n):
            user, doc, addr = f"user-{i % 4}", f"doc-{i % 5}", f"10.1.{i % 3}.{i % 7 + 1}"
            kind = i % 5
            if kind in (0, 1, 2):
                acc = self.log.chat_access(user_id=user, role="staff", question="q", documents=[(doc, "intern")],
                                           chunk_ids=[f"{doc}#1"], network_access_point=addr)
                if i % 6 == 5:  # left open now, its outcome comes later
                    self.open_access.append(str(acc["event_id"]))
                    continue
                self.log.chat_question(user_id=user, role="staff", question='wie is "user_id":"user-9"?',
                                       documents=[(doc, "intern"), ("doc-é", None)], chunk_ids=[f"{doc}#1"],
                                       network_access_point=addr, access_event_id=str(acc["event_id"]))
            elif kind == 3:
                self.log.document_view(user_id=user, document_id=doc, classification="intern",
                                       network_access_point=addr)
            else:
                self.log.auth_failure(reason="bad key", network_access_point=addr)

    def close_open(self) -> None:
        for acc in self.open_access:
            self.log.chat_question(user_id="user-1", role="staff", question="q", documents=[("doc-1", "intern")],
                                   chunk_ids=[], network_access_point="10.1.0.1", access_event_id=acc)
        self.open_access.clear()

    def lines(self) -> list[str]:
        return [e.raw for e in self.sink.entries()]

    def set_line(self, position: int, text: str) -> None:
        if isinstance(self.sink, FileAuditSink):
            lines = self.lines()
            lines[position - 1] = text
            self.sink.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            with psycopg.connect(str(self.dsn), autocommit=True) as conn:
                conn.execute("UPDATE audit_log SET line = %s WHERE seq = %s", (text, position))

    def keep(self, n: int) -> None:
        """Cut every record after the first ``n`` off (at a record boundary: the chain alone cannot tell)."""
        if isinstance(self.sink, FileAuditSink):
            self.sink.path.write_text("\n".join(self.lines()[:n]) + "\n", encoding="utf-8")
        else:
            with psycopg.connect(str(self.dsn), autocommit=True) as conn:
                conn.execute("DELETE FROM audit_log WHERE seq > %s", (n,))

    def edit(self, position: int, **changes: Any) -> None:
        rec = json.loads(self.lines()[position - 1])
        rec.update(changes)
        self.set_line(position, json.dumps(rec, ensure_ascii=False, separators=(",", ":")))

    def checkpoint(self) -> audit_checkpoint.Checkpoint | None:
        assert isinstance(self.sink, FileAuditSink | PostgresAuditSink)
        return audit_checkpoint.load(self.sink, self.sealer, self.sink.location)


@pytest.fixture(params=["file", "postgresql"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chain]:
    if request.param == "file":
        yield Chain(FileAuditSink(tmp_path / "audit.jsonl"))
        return
    dsn = request.getfixturevalue("pg_dsn")
    sink = PostgresAuditSink(dsn)
    try:
        yield Chain(sink, dsn)
    finally:
        sink.close()


def same(a: AccessReport, b: AccessReport) -> bool:
    return (a.rows, a.matched, a.users, a.shown_to, a.documents, a.chain) == (
        b.rows, b.matched, b.users, b.shown_to, b.documents, b.chain)


def filters(c: Chain) -> list[ReportFilter]:
    stamps = sorted(json.loads(line)["timestamp"] for line in c.lines())
    lo, hi = parse_timestamp(stamps[len(stamps) // 4]), parse_timestamp(stamps[3 * len(stamps) // 4])
    return [
        ReportFilter(),
        ReportFilter(user="user-1"),
        ReportFilter(user="user-9"),  # only in question texts: never a match
        ReportFilter(document="doc-2"),
        ReportFilter(document="doc-é"),
        ReportFilter(address="10.1.2.0/24"),
        ReportFilter(address="10.1.0.3"),
        ReportFilter(since=lo),
        ReportFilter(until=hi),
        ReportFilter(since=lo, until=hi, user="user-2", document="doc-2"),
        ReportFilter(since=hi + timedelta(days=1)),
    ]


def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the seals checked (each record the report verifies in full)."""
    seen: list[int] = []
    real = Sealer.matches

    def matches(self: Sealer, rec: dict[str, Any], expected: str) -> bool:
        seen.append(1)
        return real(self, rec, expected)

    monkeypatch.setattr(Sealer, "matches", matches)
    return seen


def test_a_warm_report_is_the_whole_walk_and_verifies_only_what_is_new(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain.add(40)
    assert chain.checkpoint() is None
    first = sink_report(chain.sink, chain.sealer, ReportFilter(user="user-1"))
    assert first.chain.ok and first.matched
    cp = chain.checkpoint()
    assert cp is not None and cp.records == first.chain.records == len(chain.lines())
    assert cp.plain and cp.open_access == tuple(chain.open_access)

    chain.close_open()  # outcomes after the checkpoint of accesses before it
    chain.add(10, start=40)
    total = len(chain.lines())
    seals = walks(monkeypatch)
    for f in filters(chain):
        seals.clear()
        warm = sink_report(chain.sink, chain.sealer, f, limit=7)
        assert len(seals) == total - cp.records  # only the records after the checkpoint were verified
        whole = access_report(chain.sink.entries(), chain.sealer, f, limit=7)
        assert same(warm, whole), f
        assert warm.chain.ok and warm.chain.period_ok
        cp = chain.checkpoint()
        assert cp is not None and cp.records == total  # moved on to the verified end


def test_an_edit_inside_the_checkpointed_prefix_is_reported_as_the_whole_walk_reports_it(chain: Chain) -> None:
    chain.add(20)
    assert sink_report(chain.sink, chain.sealer, ReportFilter()).chain.ok
    chain.edit(4, user_id="someone-else")
    for f in (ReportFilter(), ReportFilter(user="someone-else"), ReportFilter(document="doc-3")):
        rep = sink_report(chain.sink, chain.sealer, f)
        assert not rep.chain.ok
        assert rep.chain.errors[0] == {"line": 4, "kind": "edited",
                                       "detail": "content does not match its sha256 (record edited)"}
        assert same(rep, access_report(chain.sink.entries(), chain.sealer, f))
    # a broken chain is never checkpointed: the genuine checkpoint stays, and so does the report of the break
    cp = chain.checkpoint()
    assert cp is not None and cp.records == len(chain.lines())


def test_a_line_that_is_no_record_inside_the_prefix_is_reported(chain: Chain) -> None:
    chain.add(10)
    assert sink_report(chain.sink, chain.sealer, ReportFilter(user="user-1")).chain.ok
    chain.set_line(2, '[{"user_id":"user-1"}]')  # passes the plain pre-test of the user filter, and is no record
    f = ReportFilter(user="user-1")
    rep = sink_report(chain.sink, chain.sealer, f)
    assert not rep.chain.ok and rep.chain.errors[0]["line"] == 2 and rep.chain.errors[0]["kind"] == "unreadable"
    assert same(rep, access_report(chain.sink.entries(), chain.sealer, f))


def test_a_truncation_into_the_checkpointed_prefix_is_reported(chain: Chain) -> None:
    chain.add(20)
    before = sink_report(chain.sink, chain.sealer, ReportFilter())
    assert before.chain.ok
    chain.keep(before.chain.records - 3)
    # the chain alone cannot show it: cut at a record boundary it verifies ...
    assert access_report(chain.sink.entries(), chain.sealer, ReportFilter()).chain.ok
    # ... but the checkpoint remembers the head it had
    rep = sink_report(chain.sink, chain.sealer, ReportFilter())
    assert not rep.chain.ok
    assert [e["kind"] for e in rep.chain.errors] == ["missing-head"]
    assert before.chain.head_sha256 in rep.chain.errors[0]["detail"]


def test_a_break_after_the_checkpoint_is_reported_as_the_whole_walk_reports_it(chain: Chain) -> None:
    chain.add(15)
    cp_records = sink_report(chain.sink, chain.sealer, ReportFilter()).chain.records
    chain.add(6, start=15)
    chain.edit(cp_records + 3, outcome="failure")
    chain.set_line(cp_records + 5, chain.lines()[cp_records + 4 - 1])  # a record repeated in place of the next
    f = ReportFilter(user="user-2")
    rep = sink_report(chain.sink, chain.sealer, f)
    whole = access_report(chain.sink.entries(), chain.sealer, f)
    assert not rep.chain.ok and same(rep, whole)
    assert rep.chain.errors[0]["line"] == cp_records + 3 and rep.chain.errors[0]["kind"] == "edited"
    assert len(rep.chain.errors) >= 2


def forge(chain: Chain, sealer: Sealer, location: str | None = None) -> None:
    """A checkpoint of the chain as it now is (edits included), sealed with ``sealer``."""
    digest = audit_checkpoint.PrefixDigest()
    for _ in digest.feed(chain.sink.entries()):
        pass
    last = json.loads(chain.lines()[-1])["sha256"]
    cp = audit_checkpoint.checkpoint(location or chain.sink.location, sealer, digest, last, (), True)
    cp = dataclasses.replace(cp, key_id=Sealer(KEY).key_id)  # claims the real key
    assert isinstance(chain.sink, FileAuditSink | PostgresAuditSink)
    chain.sink.save_checkpoint(audit_checkpoint.dumps(cp, sealer))


@pytest.mark.parametrize("how", ["other key", "no key", "edited", "other chain"])
def test_a_forged_checkpoint_is_refused(chain: Chain, how: str, caplog: pytest.LogCaptureFixture) -> None:
    chain.add(12)
    assert sink_report(chain.sink, chain.sealer, ReportFilter()).chain.ok
    chain.edit(3, user_id="someone-else")  # what the forger wants to hide
    if how == "other key":
        forge(chain, Sealer(OTHER_KEY))
    elif how == "no key":
        forge(chain, Sealer(None))
    elif how == "edited":  # the genuine checkpoint, its digest replaced by the edited chain's
        genuine = json.loads(str(chain.sink.load_checkpoint()))  # type: ignore[attr-defined]
        digest = audit_checkpoint.PrefixDigest()
        for _ in digest.feed(chain.sink.entries()):
            pass
        genuine["prefix_sha256"] = digest.hexdigest()
        chain.sink.save_checkpoint(json.dumps(genuine))  # type: ignore[attr-defined]
    else:  # sealed with the right key, but about another chain
        forge(chain, chain.sealer, location="/elsewhere/audit.jsonl")
    rep = sink_report(chain.sink, chain.sealer, ReportFilter(user="someone-else"))
    assert not rep.chain.ok and rep.chain.errors[0]["line"] == 3 and rep.chain.errors[0]["kind"] == "edited"
    assert "refused" in caplog.text


def test_lines_that_do_not_read_plain_are_parsed(chain: Chain) -> None:
    chain.add(10)
    chain.log.document_view(user_id='o"brien', document_id='doc-"x"', classification=None,
                            network_access_point="10.1.0.9")
    chain.add(5, start=10)
    assert sink_report(chain.sink, chain.sealer, ReportFilter()).chain.ok
    cp = chain.checkpoint()
    assert cp is not None and not cp.plain
    chain.add(3, start=15)
    for f in [*filters(chain), ReportFilter(user='o"brien'), ReportFilter(document='doc-"x"')]:
        assert same(sink_report(chain.sink, chain.sealer, f), access_report(chain.sink.entries(), chain.sealer, f))
    assert sink_report(chain.sink, chain.sealer, ReportFilter(user='o"brien')).matched == 1


def test_a_checkpoint_that_cannot_be_stored_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = Chain(FileAuditSink(tmp_path / "audit.jsonl"))
    c.add(8)

    def fail(self: FileAuditSink, text: str) -> None:
        raise PermissionError(13, "read-only file system")

    monkeypatch.setattr(FileAuditSink, "save_checkpoint", fail)
    rep = sink_report(c.sink, c.sealer, ReportFilter())
    assert rep.chain.ok and c.checkpoint() is None
