"""The optional second copy of each audit record to syslog (RFC 5424), over real UDP and TCP listeners
on loopback; a SIEM that is down never fails the record of truth."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest

from vraagbaak_core.audit import AuditLog
from vraagbaak_core.audit_factory import build_audit_log
from vraagbaak_core.settings import load_settings

# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    rb"(?P<sd>\[vraagbaak@32473 [^\]]*\]) \xef\xbb\xbf(?P<msg>.*)$",
    re.S,
)


def _log(tmp_path: Path, transport: str, port: int) -> AuditLog:
    s = load_settings(None, audit={"path": tmp_path / "audit.jsonl",
                                   "syslog": {"host": "127.0.0.1", "port": port, "transport": transport}})
    return build_audit_log(s)


def _check(datagram: bytes, rec: dict[str, object]) -> None:
    m = RFC5424.match(datagram)
    assert m, datagram[:200]
    assert int(m["pri"]) == 13 * 8 + 4  # facility 13 (log audit), severity warning for a failure
    assert m["ts"].decode() == rec["timestamp"]
    assert m["app"] == b"vraagbaak" and m["msgid"] == b"auth.failure"
    assert f'sha256="{rec["sha256"]}"'.encode() in m["sd"]
    assert json.loads(m["msg"]) == rec


def test_udp_copy(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(10)
        log = _log(tmp_path, "udp", srv.getsockname()[1])
        rec = log.auth_failure(reason="unknown API key", network_access_point="10.0.0.9")
        data, _ = srv.recvfrom(65535)
    _check(data, rec)


def test_tcp_copy_with_octet_counting(tmp_path: Path) -> None:
    got: list[bytes] = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(10)

        def accept() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(10)
                buf = b""
                while buf.count(b"auth.failure") < 4:  # two messages (each names it twice)
                    chunk = conn.recv(65535)
                    if not chunk:
                        break
                    buf += chunk
                got.append(buf)

        t = threading.Thread(target=accept)
        t.start()
        log = _log(tmp_path, "tcp", srv.getsockname()[1])
        recs = [log.auth_failure(reason=f"bad {i}", network_access_point="10.0.0.9") for i in range(2)]
        t.join(15)
    buf = got[0]
    for rec in recs:  # RFC 6587 octet counting: "LEN SP MSG"
        n, _, rest = buf.partition(b" ")
        msg, buf = rest[: int(n)], rest[int(n):]
        _check(msg, rec)
    assert buf == b""


def test_siem_down_never_fails_the_record(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    log = _log(tmp_path, "tcp", port)
    rec = log.auth_failure(reason="x", network_access_point="10.0.0.9")
    assert [r["event_id"] for r in log.records()] == [rec["event_id"]]
    assert log.forward is not None and log.forward.failures == 1  # type: ignore[attr-defined]


def test_syslog_host_is_on_the_egress_allowlist() -> None:
    from vraagbaak_core.egress import Allowlist

    s = load_settings(None, audit={"syslog": {"host": "siem.zorg.internal", "port": 6514}})
    allow = Allowlist.from_settings(s)
    assert allow.host_allowed("siem.zorg.internal", 6514)
    assert not allow.host_allowed("siem.zorg.internal", 80)


@pytest.mark.parametrize("dsn", [
    "host=db.zorg.internal port=5433 user=vb password=geheim dbname=vb",
    "postgresql://vb:geheim@db.zorg.internal:5433/vb",
])
def test_audit_database_is_on_the_egress_allowlist(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from vraagbaak_core.egress import Allowlist, configured_endpoints

    monkeypatch.setenv("VRAAGBAAK_AUDIT__DSN", dsn)
    s = load_settings(None, audit={"backend": "postgresql"})
    assert Allowlist.from_settings(s).host_allowed("db.zorg.internal", 5433)
    assert all("geheim" not in ep.url for ep in configured_endpoints(s))
