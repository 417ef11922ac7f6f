"""AuditSink contract: the file sink and the PostgreSQL sink (a real server) behave the same.

Same record fields, same HMAC, same verification, same export and head; concurrent writers never fork
the chain; tampering with the stored entries is found by the same verifier.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from vraagbaak_core.audit import REQUIRED_FIELDS, AuditLog, FileAuditSink, Sealer
from vraagbaak_core.audit_pg import PostgresAuditSink
from vraagbaak_core.ports import AuditSink

BACKENDS = ["file", "postgresql"]
KEY = b"contract-suite-key-0123456789abcdef"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_sink(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory of sinks onto one chain (several sinks = several processes/replicas)."""
    made: list[AuditSink] = []
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgresql" else None

    def make() -> AuditSink:
        sink: AuditSink = PostgresAuditSink(dsn) if dsn is not None else FileAuditSink(tmp_path / "audit.jsonl")
        made.append(sink)
        return sink

    yield make
    for s in made:
        s.close()


def _log(sink: AuditSink, key: bytes | None = KEY) -> AuditLog:
    return AuditLog(sink=sink, sealer=Sealer(key))


def _fill(log: AuditLog, n: int) -> list[dict[str, Any]]:
    return [
        log.chat_question(user_id=f"u-{i % 3}", role="staff", question=f"vraag {i}",
                          documents=[(f"doc-{i % 2}", "intern")], chunk_ids=[f"c-{i}"], network_access_point="10.0.0.1")
        for i in range(n)
    ]


def test_is_an_audit_sink(make_sink: Any) -> None:
    assert isinstance(make_sink(), AuditSink)


def test_append_chains_and_verifies(make_sink: Any) -> None:
    log = _log(make_sink())
    written = _fill(log, 5)
    assert written[0]["prev_sha256"] == "0" * 64
    assert all(b["prev_sha256"] == a["sha256"] for a, b in zip(written, written[1:], strict=False))
    stored = list(log.records())
    assert stored == written
    for rec in stored:
        assert set(REQUIRED_FIELDS) <= set(rec)
        assert rec["chain"] == "hmac-sha256"
    res = log.verify()
    assert res.ok and res.records == 5 and res.keyed and res.head_sha256 == written[-1]["sha256"]
    assert log.head() == (5, written[-1]["sha256"])


def test_export_filters_and_is_itself_audited(make_sink: Any) -> None:
    log = _log(make_sink())
    _fill(log, 6)
    mine = list(log.export(user="u-1", actor="os:auditor"))
    assert [r["question"] for r in mine] == ["vraag 1", "vraag 4"]
    docs = list(log.export(document="doc-0", actor="os:auditor"))
    assert len(docs) == 3
    last = list(log.records())[-1]
    assert last["event_type"] == "audit.export" and last["user_id"] == "os:auditor"
    assert log.verify().ok


def test_unkeyed_and_keyed_verifiers_agree_per_mode(make_sink: Any) -> None:
    log = _log(make_sink(), key=None)
    _fill(log, 3)
    assert log.verify().ok and not log.verify().keyed
    assert not _log(log.sink, key=KEY).verify().ok  # a keyed verifier refuses unkeyed records


def test_concurrent_writers_on_one_chain(make_sink: Any) -> None:
    sinks = [make_sink() for _ in range(3)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            lg = _log(sinks[i])
            for j in range(20):
                lg.document_change("document.ingest", document_id=f"w{i}-{j}", classification="intern",
                                   user_id=f"w{i}", role="ingest")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    log = _log(sinks[0])
    res = log.verify()
    assert res.ok and res.records == 60
    ids = [r["objects"][0]["id"] for r in log.records()]
    assert sorted(ids) == sorted(f"w{i}-{j}" for i in range(3) for j in range(20))


def _tamper(backend: str, sink: AuditSink, n: int, fn: Any) -> None:
    """Apply ``fn`` to the list of stored JSON texts and store the result (by whatever means the backend
    offers a person with write access)."""
    if backend == "file":
        assert isinstance(sink, FileAuditSink)
        lines = sink.path.read_text().splitlines()
        sink.path.write_text("".join(x + "\n" for x in fn(lines)))
        return
    assert isinstance(sink, PostgresAuditSink)
    with psycopg.connect(sink._dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT seq, line FROM audit_log ORDER BY seq").fetchall()
        new = fn([r[1] for r in rows])
        conn.execute("DELETE FROM audit_log")
        for seq, line in enumerate(new, start=1):
            rec = json.loads(line) if line.startswith("{") and line.endswith("}") else {}
            conn.execute(
                "INSERT INTO audit_log (seq, event_id, event_type, ts, user_id, prev_sha256, sha256, line)"
                " VALUES (%s, %s, %s, now(), null, %s, %s, %s)",
                (seq, rec.get("event_id", f"x{seq}"), rec.get("event_type", "?"),
                 f"p{seq}", f"s{seq}", line),
            )


def test_tampering_is_found_in_every_place(backend: str, make_sink: Any) -> None:
    sink = make_sink()
    log = _log(sink)
    _fill(log, 6)

    def edit(lines: list[str]) -> list[str]:
        out = list(lines)
        rec = json.loads(out[1])
        rec["user_id"] = "iemand-anders"
        out[1] = json.dumps(rec, separators=(",", ":"))
        del out[4]
        return out

    _tamper(backend, sink, 6, edit)
    res = log.verify()
    assert [(e.line, e.kind) for e in res.errors] == [(2, "edited"), (5, "removed")]


def test_check_writable(make_sink: Any) -> None:
    make_sink().check_writable()  # no error on a healthy sink


def test_mark_bounds_what_entries_returns(make_sink: Any) -> None:
    log = _log(make_sink())
    _fill(log, 2)
    mark = log.sink.mark()
    _fill(log, 3)
    assert len(list(log.sink.entries(mark))) == 2
    assert len(list(log.sink.entries())) == 5

