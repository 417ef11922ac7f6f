"""The access record before the answer (issue 19 item 5).

- The ``chat.access`` record (who is shown which documents and chunks) is committed before the first
  piece of an answer leaves; the outcome follows as a ``chat.question`` record linked to it. A real
  uvicorn process SIGKILLed mid-stream leaves the access record in the chain, which still verifies and
  names the request as one without an outcome.
- Every PostgreSQL connection carries ``statement_timeout`` and ``lock_timeout``: a lock another
  session holds gives a clear 503 within the timeout, not a hang (a real PostgreSQL server).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import LiveServer, make_settings

from vraagbaak_core.audit import AuditLog, Sealer, read_records, verify_chain

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Hoe lang moet ik de handalcohol inwrijven?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the chain: an access record, then its linked outcome ---


def test_outcome_links_its_access_record_and_verify_checks_the_link(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", sealer=Sealer(None))
    acc = log.chat_access(user_id="u1", role="staff", question="q", documents=[("d1", "intern")],
                          chunk_ids=["c1"], network_access_point="127.0.0.1")
    log.chat_question(user_id="u1", role="staff", question="q", documents=[("d1", "intern")], chunk_ids=["c1"],
                      network_access_point="127.0.0.1", access_event_id=acc["event_id"])
    open_one = log.chat_access(user_id="u2", role="staff", question="q2", documents=[("d2", "intern")],
                               chunk_ids=["c2"], network_access_point="127.0.0.1")
    res = log.verify()
    assert res.ok and res.open_access == (open_one["event_id"],)
    # an export for the document of the first access brings its outcome along
    out = list(log.export(document="d1", actor="auditor-1"))
    assert [r["event_type"] for r in out] == ["chat.access", "chat.question"]
    # an outcome naming no earlier access record (or one already closed) is a broken link
    log.chat_question(user_id="u1", role="staff", question="q", documents=[], chunk_ids=[],
                      network_access_point="127.0.0.1", access_event_id=acc["event_id"])
    log.chat_question(user_id="u1", role="staff", question="q", documents=[], chunk_ids=[],
                      network_access_point="127.0.0.1", access_event_id="no-such-event")
    res = verify_chain(tmp_path / "a.jsonl", sealer=Sealer(None))
    assert not res.ok and [e.kind for e in res.errors] == ["unlinked", "unlinked"]
    assert "already has an outcome" in res.errors[0].reason


# --- SIGKILL mid-stream: the access record is already in the chain ---


@pytest.fixture()
def holding_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("VRAAGBAAK_AUDIT__HMAC_KEY", None)
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "chat_holding_server.py"), str(tmp_path),
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(3000):  # the process loads the embedder and ingests first
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            threading.Event().wait(0.1)
        else:
            raise AssertionError("server did not start")
        yield proc, url, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigkill_mid_stream_leaves_the_access_record(
    holding_server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, url, data = holding_server
    body = {"model": "vraagbaak", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    got_text = False
    with httpx.Client(timeout=120) as c, c.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if delta.get("content"):
                got_text = True  # the first piece of the answer (source text) has left
                break
        assert got_text
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    recs = [r for r in read_records(data / "audit.jsonl") if r["event_type"].startswith("chat.")]
    assert [r["event_type"] for r in recs] == ["chat.access"], recs  # no outcome: the process died
    acc = recs[0]
    assert acc["user_id"] == "dev" and acc["action"] == "R"
    assert any(o["type"] == "document" for o in acc["objects"])
    assert any(o["type"] == "chunk" for o in acc["objects"])
    res = verify_chain(data / "audit.jsonl", sealer=Sealer(None))
    assert res.ok and res.open_access == (acc["event_id"],)


# --- PostgreSQL: a held lock is a 503 within the timeout, not a hang ---

KEY_IT = "key-it-pglock-0123456789abcdef"


@pytest.fixture()
def pg_api(tmp_path: Path, pg_dsn: str, embedder: Any) -> Iterator[dict[str, Any]]:
    from ingest.manifest import Labels
    from serving.app import create_app
    from serving.components import build_components
    from serving.http.auth import hash_key

    keys = [{"key_sha256": hash_key(KEY_IT), "user_id": "it-1", "roles": ["staff", "ingest"],
             "groups": ["zorg"], "manages": ["zorg"]}]
    settings = make_settings(
        tmp_path, auth={"mode": "api-key", "api_keys": keys},
        catalog={"url": pg_url(pg_dsn), "statement_timeout_ms": 4000, "lock_timeout_ms": 1000},
        audit={"backend": "postgresql", "dsn": pg_dsn, "statement_timeout_ms": 4000, "lock_timeout_ms": 1000},
        ingest={"patient_data": {"names": False}},  # deduce is not what this tests
    )
    comps = build_components(settings, embedder=embedder)
    assert comps.ingestor is not None
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bezoek.md").write_text("# Bezoek\n\nBezoek is welkom van 10 tot 20 uur.", encoding="utf-8")
    comps.ingestor.ingest_paths([tmp_path / "docs"], Labels(groups=("zorg",)))
    with LiveServer(create_app(settings, comps)) as srv:
        yield {"url": srv.url, "dsn": pg_dsn}


def pg_url(dsn: str) -> str:
    """The catalog wants a postgresql:// URL; the fixture gives a libpq DSN."""
    d = psycopg.conninfo.conninfo_to_dict(dsn)
    return f"postgresql://{d['user']}:{d['password']}@{d['host']}:{d['port']}/{d['dbname']}"


def _held(dsn: str, statement: str) -> psycopg.Connection[Any]:
    """Another session that takes a lock and keeps it (its transaction stays open)."""
    other = psycopg.connect(dsn)
    other.execute(statement)
    return other


def test_a_held_catalog_lock_is_a_503_not_a_hang(pg_api: dict[str, Any]) -> None:
    hdr = {"Authorization": f"Bearer {KEY_IT}"}
    assert httpx.get(f"{pg_api['url']}/api/documents", headers=hdr, timeout=60).status_code == 200
    other = _held(pg_api["dsn"], "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
    try:
        r = httpx.get(f"{pg_api['url']}/api/documents", headers=hdr, timeout=60)  # a hang fails here
    finally:
        other.close()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "catalog_unavailable"
    assert "lock timeout" in r.json()["error"]["message"] and r.headers["Retry-After"]
    assert httpx.get(f"{pg_api['url']}/api/documents", headers=hdr, timeout=60).status_code == 200


def test_a_held_audit_chain_lock_is_a_503_not_a_hang(pg_api: dict[str, Any]) -> None:
    from vraagbaak_core.audit_pg import lock_key

    hdr = {"Authorization": f"Bearer {KEY_IT}"}
    body = {"model": "vraagbaak", "messages": [{"role": "user", "content": "Wanneer is het bezoekuur?"}]}
    other = _held(pg_api["dsn"], f"SELECT pg_advisory_lock({lock_key('audit_log')})")
    try:
        r = httpx.post(f"{pg_api['url']}/v1/chat/completions", json=body, headers=hdr, timeout=60)
    finally:
        other.close()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "audit_unavailable" and "choices" not in r.json()
    r = httpx.post(f"{pg_api['url']}/v1/chat/completions", json=body, headers=hdr, timeout=60)
    assert r.status_code == 200
