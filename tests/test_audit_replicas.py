"""Three API processes on loopback answer concurrently against one PostgreSQL audit chain
(issue 14 item 2): the chain verifies and holds every request exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pg_server import PgServer
from support import question_tag

from vraagbaak_core.audit import AuditLog, Sealer
from vraagbaak_core.audit_pg import PostgresAuditSink
from vraagbaak_core.settings import PROJECT_ROOT

KEY = "drie-replicas-een-keten-0123456789"
REPLICAS = 3
PER_REPLICA = 4


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_three_replicas_one_chain_every_request_once(pg_server: PgServer, tmp_path: Path) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    env = {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'tests'}",
        "VRAAGBAAK_AUDIT__BACKEND": "postgresql",
        "VRAAGBAAK_AUDIT__DSN": dsn,
        "VRAAGBAAK_AUDIT__HMAC_KEY": KEY,
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    ports = [_port() for _ in range(REPLICAS)]
    logs = [open(tmp_path / f"replica-{i}.log", "wb") for i in range(REPLICAS)]
    procs = [
        subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests" / "audit_replica.py"),
                          str(tmp_path / f"r{i}"), str(p)], env=env, stdout=logs[i], stderr=subprocess.STDOUT)
        for i, p in enumerate(ports)
    ]
    try:
        deadline = time.monotonic() + 420
        for i, p in enumerate(ports):
            while True:
                assert procs[i].poll() is None, (tmp_path / f"replica-{i}.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "replicas did not start"
                try:
                    if httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        questions = [(ports[i % REPLICAS], f"Wanneer is het bezoekuur? #{question_tag()}")
                     for i in range(REPLICAS * PER_REPLICA)]

        def ask(pq: tuple[int, str]) -> int:
            port, q = pq
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=300,
                           json={"model": "vraagbaak", "messages": [{"role": "user", "content": q}]})
            return r.status_code

        with ThreadPoolExecutor(len(questions)) as pool:
            codes = list(pool.map(ask, questions))
        assert codes == [200] * len(questions)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
    log = AuditLog(sink=PostgresAuditSink(dsn), sealer=Sealer(KEY.encode()))
    res = log.verify()
    assert res.ok and res.keyed, res.errors
    chats = [r for r in log.records() if r["event_type"] == "chat.question"]
    asked = sorted(q for _p, q in questions)
    assert sorted(r["question"] for r in chats) == asked  # every request, exactly once
    assert {r["audit_source_id"] for r in chats} == {f"replica-{p}" for p in ports}  # from all three
    log.close()
