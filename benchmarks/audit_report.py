"""The NEN 7513 access report over a large chain (issue 21: ≤ 2 s over 100,000 records, file and PostgreSQL).

Builds one chain of N realistic records (questions naming 2-4 documents and their chunks, document views,
failed sign-ins; 300 users, 400 documents, 200 workstations), sealed with an HMAC key, written once to a
file sink and once to a PostgreSQL sink (the real server of tests/pg_server.py). Then times, for a document,
a user as CSV with its signed manifest, and a period with an address network (median of --repeat runs):

- ``whole``: ``access_report`` over every entry, every seal and link verified (the report before checkpoints);
- ``cold``: ``sink_report`` without a checkpoint (the same walk, and it stores the checkpoint);
- ``warm``: what ``GET /api/audit/report`` does once a checkpoint exists: append the view's own
  ``audit.read`` record, then ``sink_report`` (re-hash the checkpointed prefix, parse only the lines the filter
  may match, verify every record after the checkpoint in full, move the checkpoint on).

Each warm report is checked equal (rows, counts, chain check) to the whole walk over the same chain.

    .venv/bin/python benchmarks/audit_report.py [--records 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

KEY = b"benchmark-report-key-0123456789abcdef"


def make_chain(n: int) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) in chain order, sealed like AuditLog writes them (without n fsyncs)."""
    from vraagbaak_core.audit import GENESIS, Sealer, utc_timestamp

    rnd = random.Random(7513)
    sealer = Sealer(KEY)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS
    out = []
    for i in range(n):
        kind = rnd.random()
        docs = rnd.sample(range(400), rnd.randint(2, 4))
        if kind < 0.9:
            event, objs = "chat.question", [{"type": "document", "id": f"doc-{d:04d}", "classification": "intern"}
                                            for d in docs]
            objs += [{"type": "chunk", "id": f"doc-{d:04d}#{rnd.randint(0, 40)}"} for d in docs]
        elif kind < 0.98:
            event, objs = "document.view", [{"type": "document", "id": f"doc-{docs[0]:04d}",
                                             "classification": "intern"}]
        else:
            event, objs = "auth.failure", [{"type": "endpoint", "id": "/v1/chat/completions"}]
        rec: dict[str, Any] = {
            "event_id": f"{i:08d}-bench", "event_type": event, "action": "E" if event == "auth.failure" else "R",
            "timestamp": utc_timestamp(start + timedelta(seconds=30 * i)), "outcome": "success",
            "outcome_reason": None, "user_id": f"user-{rnd.randint(0, 299):03d}", "role": "staff",
            "purpose_of_use": "zorgverlening",
            "network_access_point": f"10.20.{rnd.randint(0, 9)}.{rnd.randint(1, 20)}",
            "objects": objs, "audit_source_id": "vraagbaak", "question": "[redacted]", "trace_id": None,
        }
        sealer.stamp(rec)
        rec["prev_sha256"] = prev
        rec["sha256"] = sealer.seal(rec)
        prev = rec["sha256"]
        out.append((json.dumps(rec, ensure_ascii=False, separators=(",", ":")), rec))
    return out


def fill_pg(dsn: str, chain: list[tuple[str, dict[str, Any]]]) -> Any:
    from psycopg import sql

    from vraagbaak_core.audit_pg import PostgresAuditSink

    sink = PostgresAuditSink(dsn, table="audit_bench")
    conn = sink._connection()  # creates the table as the sink does
    with conn.transaction(), conn.cursor() as cur, cur.copy(sql.SQL(
        "COPY {} (seq, event_id, event_type, ts, user_id, prev_sha256, sha256, line) FROM STDIN"
    ).format(sql.Identifier("audit_bench"))) as cp:
        for i, (line, rec) in enumerate(chain, 1):
            cp.write_row((i, rec["event_id"], rec["event_type"], rec["timestamp"], rec["user_id"],
                          rec["prev_sha256"], rec["sha256"], line))
    return sink


def timed(fn: Any, repeat: int, before: Any = None) -> tuple[float, Any]:
    times, res = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def same(a: Any, b: Any) -> bool:
    return (a.rows, a.matched, a.users, a.shown_to, a.documents, a.chain) == (
        b.rows, b.matched, b.users, b.shown_to, b.documents, b.chain)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from pg_server import PgServer

    from vraagbaak_core.audit import AuditLog, FileAuditSink, Sealer
    from vraagbaak_core.audit_report import ReportFilter, access_report, manifest, report_csv, sink_report

    t0 = time.perf_counter()
    chain = make_chain(args.records)
    print(f"built a chain of {len(chain):,} records in {time.perf_counter() - t0:.1f} s")
    sealer = Sealer(KEY)
    cases = {
        "document (?document=)": ReportFilter(document="doc-0042"),
        "user as CSV + manifest": ReportFilter(user="user-007"),
        "period + address network": ReportFilter(since=datetime(2026, 1, 10, tzinfo=UTC),
                                                 until=datetime(2026, 1, 20, tzinfo=UTC), address="10.20.3.0/24"),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PgServer() as pg:
        path = Path(tmp) / "audit.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line, _ in chain)
        sinks = {"file": FileAuditSink(path), "postgresql": fill_pg(pg.dsn(), chain)}
        for sink_name, sink in sinks.items():
            log = AuditLog(sink=sink, sealer=sealer)

            def forget(sink: Any = sink) -> None:  # no checkpoint: the first report after a deploy
                if isinstance(sink, FileAuditSink):
                    sink.checkpoint_path.unlink(missing_ok=True)
                else:
                    sink._run(lambda c: c.execute("DROP TABLE IF EXISTS audit_bench_checkpoint"))

            def view(log: Any = log) -> None:  # the API records the view before it reads the chain
                log.audit_access("audit.read", user_id="fg-1", network_access_point="10.30.0.1")

            for case, filt in cases.items():
                csv_ = "CSV" in case

                def export(rep: Any, csv_: bool = csv_) -> Any:
                    if csv_:
                        manifest(rep, report_csv(rep), "csv", sealer)
                    return rep

                def whole(sink: Any = sink, filt: ReportFilter = filt) -> Any:
                    return export(access_report(sink.entries(), sealer, filt, limit=1000))

                def report(sink: Any = sink, filt: ReportFilter = filt) -> Any:
                    return export(sink_report(sink, sealer, filt, limit=1000))

                def warm(report: Any = report, view: Any = view) -> Any:
                    view()
                    return report()

                t_whole, rep = timed(whole, args.repeat)
                assert rep.chain.ok and rep.chain.records >= len(chain)
                t_cold, rep = timed(report, args.repeat, before=forget)
                assert rep.chain.ok
                t_warm, rep = timed(warm, args.repeat)
                assert rep.chain.ok and same(rep, access_report(sink.entries(), sealer, filt, limit=1000))
                rows.append((sink_name, case, rep.matched, t_whole, t_cold, t_warm))
        sinks["postgresql"].close()
    print(f"\naccess report over {len(chain):,} records, seconds, median of {args.repeat}:")
    print(f"{'sink':<11} {'report':<27} {'matched':>8} {'whole':>7} {'cold':>7} {'warm':>7} {'warm ≤ 2 s':>10}")
    for sink_name, case, matched, a, b, c in rows:
        ok = 'yes' if c <= 2.0 else 'NO'
        print(f"{sink_name:<11} {case:<27} {matched:>8,} {a:>7.2f} {b:>7.2f} {c:>7.2f} {ok:>10}")


if __name__ == "__main__":
    main()
