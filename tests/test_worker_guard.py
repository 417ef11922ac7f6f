"""Parser workers are processes of their own: they install a loopback-only egress guard first."""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def _child(audit_path: str, out: multiprocessing.queues.Queue) -> None:  # type: ignore[type-arg]
    import socket

    from ingest.worker import WorkerConfig, _guard_worker

    _guard_worker(WorkerConfig(audit_path=audit_path))
    try:
        socket.create_connection(("192.0.2.1", 443), timeout=2)
        out.put("connected")
    except PermissionError as err:
        out.put(f"refused: {err}")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    socket.create_connection(srv.getsockname(), timeout=2).close()
    out.put("loopback ok")


def test_worker_guard_refuses_and_audits(tmp_path: Path) -> None:
    from vraagbaak_core.audit import read_records

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    audit = tmp_path / "audit.jsonl"
    p = ctx.Process(target=_child, args=(str(audit), out))
    p.start()
    p.join(60)
    first, second = out.get(timeout=5), out.get(timeout=5)
    assert first.startswith("refused: egress refused") and "192.0.2.1:443" in first
    assert second == "loopback ok"
    recs = list(read_records(audit))
    assert [r["event_type"] for r in recs] == ["egress.refused"]
    assert recs[0]["objects"][0]["id"].endswith("192.0.2.1:443")
