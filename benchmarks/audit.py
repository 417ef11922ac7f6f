"""Concurrent audit appends: records/s with 1, 3 and 8 writer processes on the PostgreSQL sink (one chain,
serialised by ``pg_advisory_xact_lock``) against the file sink (one chain, serialised by ``flock`` +
``fsync``), measured in the same run on the same disk. Every run ends with a full verification.

PostgreSQL runs durably here (fsync on, synchronous_commit on): a record counts once it is committed.

    .venv/bin/python benchmarks/audit.py [--records 150] [--writers 1,3,8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

KEY = b"benchmark-audit-key-0123456789abcdef"


def _writer(kind: str, target: str, n: int, name: str, go: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    from vraagbaak_core.audit import AuditLog, FileAuditSink, Sealer
    from vraagbaak_core.audit_pg import PostgresAuditSink

    sink = PostgresAuditSink(target) if kind == "postgresql" else FileAuditSink(target)
    log = AuditLog(sink=sink, sealer=Sealer(KEY))
    log.sink.check_writable()  # connect before the clock starts
    go.wait()
    for i in range(n):
        log.chat_question(user_id=name, role="staff", question=f"vraag {i}", documents=[("doc-1", "intern")],
                          chunk_ids=[f"doc-1#{i % 7}"], network_access_point="10.0.0.1")
    log.close()


def run(kind: str, target: str, writers: int, per_writer: int) -> float:
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(kind, target, per_writer, f"w{i}", go)) for i in range(writers)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # every writer imported and connected
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"writer failed ({kind})"
    return writers * per_writer / (time.perf_counter() - t0)


def verify(kind: str, target: str, expect: int) -> None:
    from vraagbaak_core.audit import AuditLog, FileAuditSink, Sealer
    from vraagbaak_core.audit_pg import PostgresAuditSink

    sink = PostgresAuditSink(target) if kind == "postgresql" else FileAuditSink(target)
    res = AuditLog(sink=sink, sealer=Sealer(KEY)).verify()
    sink.close()
    assert res.ok and res.records == expect, (kind, res.records, res.errors[:3])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=150, help="records per writer")
    ap.add_argument("--writers", default="1,3,8")
    args = ap.parse_args()
    from pg_server import PgServer

    counts = [int(x) for x in args.writers.split(",")]
    rows = []
    with PgServer(durable=True) as pg, tempfile.TemporaryDirectory(prefix="vb-audit-bench-") as tmp:
        for w in counts:
            db = pg.create_database(f"bench_{w}")
            dsn = pg.dsn(db)
            path = str(Path(tmp) / f"audit-{w}.jsonl")
            pg_rate = run("postgresql", dsn, w, args.records)
            verify("postgresql", dsn, w * args.records)
            file_rate = run("file", path, w, args.records)
            verify("file", path, w * args.records)
            rows.append((w, pg_rate, file_rate))
    print(f"audit append, {args.records} records per writer, HMAC-SHA256, verified after each run")
    print(f"{'writers':>7} | {'PostgreSQL rec/s':>16} | {'file rec/s':>10} | {'PG / file':>9}")
    print(f"{'-' * 7}-+-{'-' * 16}-+-{'-' * 10}-+-{'-' * 9}")
    for w, p, f in rows:
        print(f"{w:>7} | {p:>16.0f} | {f:>10.0f} | {p / f:>9.2f}")


if __name__ == "__main__":
    main()
