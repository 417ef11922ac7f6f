"""The egress guard.

The guard is a process-wide, permanent audit hook, so every test that arms it runs in a child
interpreter (the same start-up path as the API: ``startup_guard(settings, audit_log)``). Refused
attempts are stopped by the hook before the system call: no packet leaves this machine. Tests that
need a real non-loopback address run in a network namespace with only a loopback interface, where
those addresses are put on ``lo``; they skip where ``unshare`` is not permitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from vraagbaak_core.audit import REQUIRED_FIELDS, read_records, verify_chain
from vraagbaak_core.egress import Allowlist, EgressRefused, Refusal, parse_endpoint
from vraagbaak_core.settings import PROJECT_ROOT, load_settings

PRELUDE = textwrap.dedent(
    """
    import json, socket, sys
    from vraagbaak_core.egress import force_offline_env
    force_offline_env()
    from vraagbaak_core.audit_factory import build_audit_log
    from vraagbaak_core.egress import EgressRefused, startup_guard
    from vraagbaak_core.settings import load_settings
    settings = load_settings(sys.argv[1])
    log = build_audit_log(settings)
    startup_guard(settings, log)
    out = {}
    def attempt(name, fn):
        try:
            out[name] = ["ok", fn()]
        except EgressRefused as err:
            out[name] = ["refused", str(err)]
        except OSError as err:
            out[name] = ["oserror", str(err)]
    """
)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"audit:\n  path: {tmp_path / 'audit.jsonl'}\nauth:\n  mode: insecure-dev\n{extra}")
    return cfg


def run_guarded(body: str, cfg: Path, wrap: list[str] | None = None) -> dict[str, Any]:
    """Run PRELUDE + body in a fresh interpreter (optionally under ``wrap``); return its ``out`` dict."""
    code = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [*(wrap or []), sys.executable, "-c", code, str(cfg)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def netns_wrap(tmp_path: Path, hosts: str, addresses: list[str]) -> list[str]:
    """``unshare`` into new network + mount namespaces with only ``lo`` (carrying ``addresses``)
    and our own /etc/hosts; skips where that is not permitted."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(hosts)
    setup = f"mount --bind {hosts_file} /etc/hosts && ip link set lo up"
    for a in addresses:
        setup += f" && ip addr add {a}/32 dev lo"
    ns = ["unshare", "-nm"] if os.geteuid() == 0 else ["unshare", "-rnm"]
    probe = subprocess.run([*ns, "bash", "-c", setup], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces not permitted here: {probe.stderr.strip()}")
    return [*ns, "bash", "-c", setup + ' && exec "$@"', "netns"]


# --- decisions, without arming the hook ---


def production_allowlist() -> Allowlist:
    s = load_settings(
        PROJECT_ROOT / "configs" / "production.example.yaml",
        egress={"allow_cidrs": ["10.0.0.0/8"]},
    )
    return Allowlist.from_settings(s)


def test_allowlist_is_derived_from_configured_endpoints() -> None:
    allow = production_allowlist()
    assert allow.describe() == "loopback, 10.0.0.0/8, qdrant:6333, vllm:8000, sso.ziekenhuis.internal:443"
    assert allow.check_connect("10.1.2.3", 443) is None
    assert allow.check_connect("127.0.0.5", 9) is None
    assert allow.check_connect("::1", 9) is None
    assert allow.check_resolve("qdrant", 6333) is None
    assert allow.check_resolve("localhost", None) is None


def test_refusal_names_the_destination_and_the_allowlist() -> None:
    allow = production_allowlist()
    refusal = allow.check_connect("93.184.216.34", 443)
    assert refusal is not None
    assert refusal.message == (
        "egress refused: connection to 93.184.216.34:443 is not on the allow-list "
        "(allowed: loopback, 10.0.0.0/8, qdrant:6333, vllm:8000, sso.ziekenhuis.internal:443)"
    )
    assert isinstance(EgressRefused(refusal), PermissionError)
    # IPv4-mapped IPv6 is the same public address; the cloud metadata address is not private enough
    assert allow.check_connect("::ffff:93.184.216.34", 443) is not None
    assert allow.check_connect("169.254.169.254", 80) is not None
    resolve = allow.check_resolve("huggingface.co", 443)
    assert resolve is not None and resolve.kind == "resolve" and "'huggingface.co'" in resolve.message


def test_resolved_endpoint_addresses_are_allowed_only_on_the_endpoint_port() -> None:
    allow = production_allowlist()
    assert allow.check_connect("172.20.0.7", 6333) is not None  # not yet known
    allow.learn("qdrant", [(2, 1, 6, "", ("172.20.0.7", 6333))])
    assert allow.check_connect("172.20.0.7", 6333) is None
    assert allow.check_connect("172.20.0.7", 22) is not None
    allow.learn("example.org", [(2, 1, 6, "", ("93.184.216.34", 443))])  # not an endpoint: ignored
    assert allow.check_connect("93.184.216.34", 443) is not None


def test_ip_literal_endpoint_and_non_http_urls() -> None:
    ep = parse_endpoint("store.url", "http://10.2.3.4:6333")
    assert ep is not None and ep.address == "10.2.3.4:6333"
    assert parse_endpoint("store.url", ":memory:") is None
    assert parse_endpoint("x", "https://[fd00::5]/v1") is not None
    allow = Allowlist.build([ep])
    assert allow.check_connect("10.2.3.4", 6333) is None
    assert allow.check_connect("10.2.3.4", 6334) is not None
    assert isinstance(allow.check_connect("10.2.3.5", 6333), Refusal)


# --- the armed guard, in a child interpreter ---


def test_guard_refuses_a_real_connection_and_audits_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = run_guarded(
        """
        attempt("create_connection", lambda: socket.create_connection(("192.0.2.1", 9), timeout=2).close())
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        attempt("raw_connect", lambda: s.connect(("93.184.216.34", 443)))
        attempt("peer_after_refusal", lambda: s.getpeername())
        attempt("connect_ex", lambda: s.connect_ex(("8.8.8.8", 53)))
        attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
        attempt("ipv6", lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 443, 0, 0)))
        """,
        cfg,
    )
    assert out["create_connection"][0] == "refused"
    expected = "connection to 192.0.2.1:9 is not on the allow-list (allowed: loopback)"
    assert expected in out["create_connection"][1]
    assert out["raw_connect"] == [
        "refused",
        "egress refused: connection to 93.184.216.34:443 is not on the allow-list (allowed: loopback)",
    ]
    assert out["peer_after_refusal"][0] == "oserror"  # the socket never connected
    assert out["connect_ex"][0] == "refused"
    assert out["udp"][0] == "refused" and "datagram to 8.8.8.8:53" in out["udp"][1]
    assert out["ipv6"][0] == "refused" and "[2001:db8::1]:443" in out["ipv6"][1]

    log = tmp_path / "audit.jsonl"
    records = list(read_records(log))
    assert [r["event_type"] for r in records] == ["egress.refused"] * 5
    first = records[0]
    assert all(f in first for f in REQUIRED_FIELDS)
    assert first["outcome"] == "refused" and first["action"] == "E"
    assert first["objects"] == [{"type": "endpoint", "id": "connect:192.0.2.1:9"}]
    assert "192.0.2.1:9" in first["outcome_reason"]
    assert verify_chain(log).ok


def test_guard_refuses_resolving_names_off_the_list(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "store:\n  backend: qdrant\n  url: http://qdrant.vraagbaak.test:6333\n")
    out = run_guarded(
        """
        attempt("getaddrinfo", lambda: socket.getaddrinfo("example.org", 443))
        attempt("gethostbyname", lambda: socket.gethostbyname("huggingface.co"))
        attempt("connect_by_name", lambda: socket.socket().connect(("pypi.org", 443)))
        attempt("localhost", lambda: len(socket.getaddrinfo("localhost", 80)) > 0)
        attempt("reverse", lambda: socket.gethostbyaddr("8.8.8.8"))
        attempt("bytes_name", lambda: socket.getaddrinfo(b"xn--bcher-kva.example", 443))  # as anyio passes it
        # an IP literal needs no DNS (a server may bind to its pod address); connect decides
        attempt("literal", lambda: socket.getaddrinfo("10.1.2.3", 8000, type=socket.SOCK_STREAM)[0][4][0])
        """,
        cfg,
    )
    assert out["getaddrinfo"] == [
        "refused",
        "egress refused: name resolution of 'example.org' is not on the allow-list "
        "(allowed: localhost, loopback, qdrant.vraagbaak.test:6333)",
    ]
    assert out["gethostbyname"][0] == "refused"
    assert out["connect_by_name"][0] == "refused" and "pypi.org:443" in out["connect_by_name"][1]
    assert out["localhost"] == ["ok", True]
    assert out["reverse"][0] == "refused" and "connection to 8.8.8.8 " in out["reverse"][1]
    assert out["literal"] == ["ok", "10.1.2.3"]
    assert out["bytes_name"][0] == "refused" and "'xn--bcher-kva.example'" in out["bytes_name"][1]
    kinds = [r["objects"][0]["id"] for r in read_records(tmp_path / "audit.jsonl")]
    assert kinds == [
        "resolve:example.org",
        "resolve:huggingface.co",
        "connect:pypi.org:443",
        "connect:8.8.8.8",
        "resolve:xn--bcher-kva.example",
    ]


def test_guard_allows_loopback(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = run_guarded(
        """
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
        port = srv.getsockname()[1]
        def roundtrip():
            c = socket.create_connection(("localhost", port), timeout=2)
            conn, _ = srv.accept(); conn.sendall(b"pong"); data = c.recv(4); c.close(); conn.close()
            return data.decode()
        attempt("loopback", roundtrip)
        import tempfile, os
        upath = os.path.join(tempfile.mkdtemp(), "s")
        usrv = socket.socket(socket.AF_UNIX); usrv.bind(upath); usrv.listen(1)
        def unix():
            c = socket.socket(socket.AF_UNIX); c.connect(upath); c.close(); return "connected"
        attempt("unix", unix)
        """,
        cfg,
    )
    assert out["loopback"] == ["ok", "pong"]
    assert out["unix"] == ["ok", "connected"]
    assert not (tmp_path / "audit.jsonl").exists()  # nothing refused, nothing audited


def test_install_is_idempotent_and_swappable(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    out = run_guarded(
        """
        from vraagbaak_core import egress
        egress.install_guard(egress.Allowlist.build([], ["10.0.0.0/8"]))
        egress.install_guard(egress.Allowlist.build([], ["10.0.0.0/8"]))
        attempt("swapped", lambda: socket.socket().connect(("192.0.2.1", 9)))
        egress.reset_guard()
        out["active_after_reset"] = egress.guard_active()
        egress.install_guard(egress.Allowlist.build([]))
        out["active_again"] = egress.guard_active()
        out["hooks_added_once"] = egress._STATE.hook_added
        """,
        cfg,
    )
    assert out["swapped"][0] == "refused" and "(allowed: loopback, 10.0.0.0/8)" in out["swapped"][1]
    assert out["active_after_reset"] is False and out["active_again"] is True


def test_configured_cidr_and_endpoint_allowed_inside_a_loopback_only_namespace(tmp_path: Path) -> None:
    """Real connections to non-loopback addresses that exist only on this namespace's ``lo``:
    a CIDR from settings and an endpoint hostname (resolved through /etc/hosts) are allowed, on the
    endpoint's port only; a neighbouring address outside the allow-list is refused."""
    wrap = netns_wrap(
        tmp_path,
        "127.0.0.1 localhost\n10.99.0.2 qdrant.vraagbaak.test\n",
        ["10.77.0.1", "10.99.0.2", "10.98.0.1"],
    )
    cfg = write_config(
        tmp_path,
        "store:\n  backend: qdrant\n  url: http://qdrant.vraagbaak.test:6333\n"
        "egress:\n  allow_cidrs: [10.77.0.0/16]\n",
    )
    out = run_guarded(
        """
        def listen(host, port):
            s = socket.socket(); s.bind((host, port)); s.listen(4); return s
        servers = [listen("10.77.0.1", 7000), listen("10.99.0.2", 6333), listen("10.99.0.2", 6334),
                   listen("10.98.0.1", 7000)]
        def conn(host, port):
            c = socket.create_connection((host, port), timeout=2); peer = c.getpeername()[0]; c.close()
            return peer
        attempt("cidr", lambda: conn("10.77.0.1", 7000))
        attempt("endpoint_by_name", lambda: conn("qdrant.vraagbaak.test", 6333))
        attempt("endpoint_ip_after_resolve", lambda: conn("10.99.0.2", 6333))
        attempt("endpoint_other_port", lambda: conn("10.99.0.2", 6334))
        attempt("outside_cidr", lambda: conn("10.98.0.1", 7000))
        """,
        cfg,
        wrap,
    )
    assert out["cidr"] == ["ok", "10.77.0.1"]
    assert out["endpoint_by_name"] == ["ok", "10.99.0.2"]
    assert out["endpoint_ip_after_resolve"] == ["ok", "10.99.0.2"]
    assert out["endpoint_other_port"][0] == "refused"
    assert out["outside_cidr"] == [
        "refused",
        "egress refused: connection to 10.98.0.1:7000 is not on the allow-list "
        "(allowed: loopback, 10.77.0.0/16, qdrant.vraagbaak.test:6333)",
    ]
