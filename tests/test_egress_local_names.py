"""``*.localhost`` names and the host's own name no longer pass the egress guard unconditionally
(issue 11, "also found"): only names the hosts file answers skip DNS; ``*.localhost`` is answered as
loopback by the guarded resolver itself, and any path to the real resolver for it is refused."""

from __future__ import annotations

from pathlib import Path

from test_egress import run_guarded, write_config

from vraagbaak_core.egress import Allowlist, local_names


def test_local_names_come_from_the_hosts_file_when_files_come_first(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 zkh-app-01.zorg.internal zkh-app-01  # this host\n# 1.2.3.4 x\n")
    ns = tmp_path / "nsswitch.conf"
    ns.write_text("passwd: files\nhosts:          files dns\n")
    assert local_names(str(hosts), str(ns)) == {"localhost", "zkh-app-01.zorg.internal", "zkh-app-01"}
    ns.write_text("hosts: dns [NOTFOUND=return] files\n")
    assert local_names(str(hosts), str(ns)) == frozenset()  # DNS is asked first: nothing is local


def test_localhost_subdomains_and_unlisted_own_name_are_not_exempt() -> None:
    allow = Allowlist.build([])
    allow.local = frozenset({"localhost"})
    assert allow.host_allowed("localhost")
    assert not allow.host_allowed("vraagbaak.localhost")
    assert allow.check_resolve("vraagbaak.localhost", None) is not None
    assert allow.check_connect("vraagbaak.localhost", 8000) is not None  # would resolve inside C
    assert not allow.host_allowed("zkh-app-01")  # the own name, where the hosts file does not list it


def test_guarded_process_answers_localhost_names_itself_and_refuses_the_resolver(tmp_path: Path) -> None:
    out = run_guarded(
        """
        import _socket
        attempt("wrapped", lambda: sorted({a[4][0] for a in socket.getaddrinfo("vb-test.localhost", 80)}))
        attempt("raw", lambda: _socket.getaddrinfo("vb-test.localhost", 80))
        attempt("connect", lambda: socket.socket().connect(("vb-test.localhost", 9)))
        attempt("plain", lambda: len(socket.getaddrinfo("localhost", 80)) > 0)
        """,
        write_config(tmp_path),
    )
    assert out["wrapped"][0] == "ok" and all(a in ("127.0.0.1", "::1") for a in out["wrapped"][1])
    assert out["raw"][0] == "refused" and "vb-test.localhost" in out["raw"][1]
    # connect(("name", port)) resolves inside C *before* the audit event (CPython's getsockaddrarg):
    # the guard refuses the connection but cannot stop that lookup (docs/auditors.md says so)
    assert out["connect"][0] in ("refused", "oserror")
    assert out["plain"] == ["ok", True]
