"""The egress guard: offline library settings plus a runtime refusal of any connection off the allow-list.

Every process (API, CLI, ingest workers) calls :func:`startup_guard` first thing, before importing
anything heavy. This module therefore imports only the standard library at module level.

How the guard works
-------------------
``sys.addaudithook`` sees CPython's ``socket.*`` audit events *before* the system call is made, so a
refused connection never sends a packet (not even a SYN or a DNS query):

* ``socket.getaddrinfo`` / ``socket.gethostbyname`` / ``socket.gethostbyaddr``: name resolution is
  itself egress (a DNS query leaks the name), so only the hostnames of configured endpoints and the
  names the hosts file answers (``localhost``, the machine's own name where listed) may be resolved;
  ``*.localhost`` is answered as loopback by the guarded ``socket.getaddrinfo`` without the resolver.
  An IP literal needs no lookup and passes (binding a server to a pod address must work); its
  connection is checked at connect.
  A reverse lookup (``gethostbyaddr``) of an address must pass the address check.
* ``socket.connect`` / ``socket.sendto`` / ``socket.sendmsg``: AF_UNIX and AF_NETLINK are local and
  always allowed. For AF_INET/AF_INET6 the address must be loopback (or unspecified, which Linux maps to
  the local host), inside one of ``egress.allow_cidrs``, or an address that an allow-listed hostname
  resolved to (then only on that endpoint's port). Any other family (AF_PACKET, ...) is refused.

Which addresses belong to an allowed hostname
---------------------------------------------
An audit hook runs *before* ``getaddrinfo`` and cannot see its answer. Rather than resolving every
endpoint once at start-up (which blocks start-up on DNS and goes stale when a Kubernetes Service or a
Qdrant pod moves), the guard wraps ``socket.getaddrinfo`` to *record* the addresses an allowed hostname
resolved to, at the moment it is resolved. The wrapper only records; refusing stays in the audit hook,
which Python code cannot bypass. Code that resolves outside the wrapper (``_socket.getaddrinfo``, or a
reference to ``socket.getaddrinfo`` taken before the guard was installed) still fires the audit event,
but its answer is not recorded, so its connection is refused: the guard fails closed. Addresses that are
never resolved by name (a headless Service reached by pod IP, say) must be named in ``egress.allow_cidrs``.

Limits, stated for auditors: the hook sees sockets made by the Python interpreter. Networking done
entirely inside a C extension (gRPC core, for example; the Qdrant client is therefore used over HTTP)
or in a child program is not seen; the network-namespace test and the deployment's NetworkPolicies /
``internal: true`` networks are the layers that cover those.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vraagbaak_core.audit_factory import build_audit_log

if TYPE_CHECKING:  # only for annotations: nothing heavy is imported at start-up
    from vraagbaak_core.audit import AuditLog
    from vraagbaak_core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    # ONNX Runtime (1.32, Linux wheel) carries Microsoft's 1DS telemetry client: it writes $TMPDIR/.ses and
    # later resolves mobile.events.data.microsoft.com to upload events. Read once, at import: see
    # import_onnxruntime.
    "ORT_DISABLE_TELEMETRY": "1",
}

_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "tcp": 514, "udp": 514}
_LOCAL_FAMILIES = {getattr(socket, "AF_UNIX", -1), getattr(socket, "AF_NETLINK", -2)}
_INET_FAMILIES = {socket.AF_INET, socket.AF_INET6}
_SOCKET_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sendmsg",
    }
)


class EgressRefused(PermissionError):
    """A connection or name resolution outside the allow-list; raised before anything is sent."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class Refusal:
    """What the guard refused: ``kind`` is ``connect``, ``resolve`` or ``send``."""

    kind: str
    destination: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Endpoint:
    """One configured outbound endpoint, e.g. ``store.url`` -> ``qdrant:6333``."""

    name: str
    url: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(name: str, url: str) -> Endpoint | None:
    """An :class:`Endpoint` for an http(s) URL; ``None`` for anything that is not a network URL."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    return Endpoint(name=name, url=url, host=parts.hostname.lower(), port=port)


def _ip(host: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        if mapped is not None:  # ::ffff:8.8.8.8 is 8.8.8.8
            return mapped
        if addr.scope_id:
            return ipaddress.IPv6Address(str(addr).split("%", 1)[0])
    return addr


def _fmt(host: str, port: int | None) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            return socket.getservbyname(value)
        except OSError:
            return None
    return None


@dataclass
class Allowlist:
    """Where a process may connect: loopback, ``cidrs``, and the configured ``endpoints``.

    ``learned`` maps an address to the ports it may be reached on; it is filled when an endpoint's
    hostname is resolved (and at construction for endpoints given as IP literals).
    """

    endpoints: tuple[Endpoint, ...] = ()
    cidrs: tuple[IPNetwork, ...] = ()
    extra_hosts: frozenset[str] = frozenset()
    # names the system answers from its hosts file, with no DNS query (see local_names)
    local: frozenset[str] = field(default_factory=lambda: local_names())
    learned: dict[IPAddress, set[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        for ep in self.endpoints:
            addr = _ip(ep.host)
            if addr is not None:
                self.learned.setdefault(addr, set()).add(ep.port)

    @classmethod
    def from_settings(cls, settings: Settings) -> Allowlist:
        """Derive the allow-list from the configured endpoints and ``egress.allow_cidrs``."""
        return cls.build(configured_endpoints(settings), settings.egress.allow_cidrs)

    @classmethod
    def build(cls, endpoints: Iterable[Endpoint], cidrs: Iterable[str] = ()) -> Allowlist:
        nets = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        return cls(endpoints=tuple(endpoints), cidrs=nets)

    @property
    def hostnames(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for ep in self.endpoints:
            if _ip(ep.host) is None:
                out.setdefault(ep.host, set()).add(ep.port)
        return out

    def describe(self) -> str:
        parts = ["loopback", *(str(n) for n in self.cidrs), *(ep.address for ep in self.endpoints)]
        return ", ".join(dict.fromkeys(parts))

    # --- decisions (pure: the hook and the auditor's report both use these) ---

    def address_allowed(self, addr: IPAddress, port: int | None) -> bool:
        if addr.is_loopback or addr.is_unspecified:
            return True
        if any(addr.version == net.version and addr in net for net in self.cidrs):
            return True
        with self._lock:
            ports = self.learned.get(addr)
        return ports is not None and (port is None or port in ports)

    def check_connect(self, host: str, port: int | None) -> Refusal | None:
        """``None`` if a connection to ``host:port`` is allowed, else the refusal."""
        addr = _ip(host)
        if addr is not None:
            if self.address_allowed(addr, port):
                return None
        elif self.host_allowed(host, port):
            # socket.connect(("name", port)) resolves inside C without an audit event
            return None
        dest = _fmt(host, port)
        return Refusal(
            "connect",
            dest,
            f"egress refused: connection to {dest} is not on the allow-list (allowed: {self.describe()})",
        )

    def host_allowed(self, host: str, port: int | None = None) -> bool:
        """Whether resolving/connecting by ``host`` stays off the network: a configured endpoint, or a
        name in the hosts file. ``*.localhost`` and the machine's own name are not exempt as such: where the
        hosts file does not list them, the resolver would send them to DNS (the guarded
        ``socket.getaddrinfo`` answers ``*.localhost`` with loopback itself, RFC 6761)."""
        name = host.lower().rstrip(".")
        if name in self.local:
            return True
        if name in self.extra_hosts:
            return True
        ports = self.hostnames.get(name)
        return ports is not None and (port is None or port in ports)

    def check_resolve(self, host: str | None, port: int | None) -> Refusal | None:
        """``None`` if resolving ``host`` is allowed, else the refusal."""
        if host is None or host == "":
            return None  # passive / local wildcard lookups
        if _ip(host) is not None:
            return None  # an IP literal needs no lookup; the connect check decides
        if self.host_allowed(host):
            return None
        return Refusal(
            "resolve",
            host,
            f"egress refused: name resolution of {host!r} is not on the allow-list "
            f"(allowed: localhost, {self.describe()})",
        )

    def learn(self, host: str, results: Iterable[tuple[Any, ...]]) -> None:
        """Record the addresses an allowed hostname resolved to (from ``getaddrinfo`` results)."""
        ports = self.hostnames.get(host.lower().rstrip("."))
        if not ports:
            return
        with self._lock:
            for res in results:
                sockaddr = res[4]
                addr = _ip(str(sockaddr[0])) if isinstance(sockaddr, tuple) and sockaddr else None
                if addr is not None:
                    self.learned.setdefault(addr, set()).update(ports)


def local_names(hosts: str = "/etc/hosts", nsswitch: str = "/etc/nsswitch.conf") -> frozenset[str]:
    """Host names answered from the hosts file without a DNS query.

    Empty when ``nsswitch.conf`` asks DNS before the hosts file (then every name may leave the host).
    """
    try:
        with open(nsswitch, encoding="utf-8") as fh:
            for line in fh:
                if line.strip().startswith("hosts:"):
                    sources = [w.split("[")[0] for w in line.split(":", 1)[1].split()]
                    if "files" not in sources or ("dns" in sources and sources.index("dns") < sources.index("files")):
                        return frozenset()
                    break
    except OSError:
        pass  # no nsswitch.conf: glibc's default asks files first
    names: set[str] = set()
    try:
        with open(hosts, encoding="utf-8") as fh:
            for line in fh:
                words = line.split("#", 1)[0].split()
                names.update(w.lower().rstrip(".") for w in words[1:])
    except OSError:
        return frozenset()
    return frozenset(names)


def _is_localhost_name(name: str) -> bool:
    n = name.lower().rstrip(".")
    return n == "localhost" or n.endswith(".localhost")


def configured_endpoints(settings: Settings) -> list[Endpoint]:
    """Every outbound endpoint in the effective settings (store, generator, embedder, OIDC issuer and JWKS)."""
    candidates: list[tuple[str, str | None]] = [
        ("store.url", settings.store.url),
        ("generator.base_url", settings.generator.base_url),
        ("embedder.base_url", settings.embedder.base_url),
        ("auth.oidc.issuer", settings.auth.oidc.issuer),
        ("auth.oidc.jwks_url", settings.auth.oidc.jwks_url),
    ]
    dsn_url = _dsn_url(settings.audit.dsn.get_secret_value()) if settings.audit.dsn is not None else None
    if settings.audit.backend == "postgresql" and dsn_url:
        candidates.append(("audit.dsn", dsn_url))
    cat_url = settings.catalog.url.get_secret_value() if settings.catalog.url is not None else ""
    if cat_url.startswith(("postgresql://", "postgres://")):
        candidates.append(("catalog.url", _dsn_url(cat_url)))
    sl = settings.audit.syslog
    if sl.host:
        host = f"[{sl.host}]" if ":" in sl.host else sl.host
        candidates.append(("audit.syslog", f"{sl.transport}://{host}:{sl.port}"))
    out: list[Endpoint] = []
    for name, url in candidates:
        if url:
            ep = parse_endpoint(name, url)
            if ep is not None:
                out.append(ep)
    return out


def _dsn_url(dsn: str) -> str | None:
    """``postgresql://host:port`` of a libpq DSN (URL or ``key=value`` form), without credentials."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if not parts.hostname:
            return None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"postgresql://{host}:{parts.port or 5432}"
    kv = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
    kv_host = kv.get("hostaddr") or kv.get("host")
    if not kv_host or kv_host.startswith("/"):
        return None  # a Unix socket: local, no egress
    return f"postgresql://{kv_host}:{kv.get('port', '5432')}"


def force_offline_env() -> dict[str, str]:
    """Force the libraries' offline and no-telemetry switches; returns what was set."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    return dict(OFFLINE_ENV)


def import_onnxruntime() -> Any:
    """``onnxruntime``, imported with its telemetry switched off; every import of it goes through here.

    ONNX Runtime reads ``ORT_DISABLE_TELEMETRY`` once, when it is imported; ``disable_telemetry_events()``
    afterwards does not stop it (measured on 1.32: the session file is written all the same). So the
    switch is set before the first import, also in processes that never ran :func:`startup_guard`
    (benchmarks, library use), and an import that came first without it is refused.
    """
    if "onnxruntime" not in sys.modules:
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    elif os.environ.get("ORT_DISABLE_TELEMETRY") != "1":
        raise RuntimeError(
            "onnxruntime was imported before its telemetry was switched off: set ORT_DISABLE_TELEMETRY=1 "
            "in the environment, or import it through vraagbaak_core.egress.import_onnxruntime"
        )
    import onnxruntime

    return onnxruntime


# --- the process-global hook ---


@dataclass
class _GuardState:
    allow: Allowlist | None = None  # None: the hook lets everything through (not installed or reset)
    on_refused: Callable[[Refusal], None] | None = None
    hook_added: bool = False
    wrapped_getaddrinfo: bool = False


_STATE = _GuardState()
_INSTALL_LOCK = threading.Lock()
_IN_CALLBACK = threading.local()


def _hostname_arg(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")  # bytes hostnames are IDNA-encoded ASCII
    return str(value)


def _refuse(refusal: Refusal) -> None:
    cb = _STATE.on_refused
    if cb is not None and not getattr(_IN_CALLBACK, "active", False):
        _IN_CALLBACK.active = True
        try:
            cb(refusal)
        except OSError as err:  # the refusal stands even if it could not be written down
            print(f"vraagbaak: could not record refused egress: {err}", file=sys.stderr)
        finally:
            _IN_CALLBACK.active = False
    raise EgressRefused(refusal)


def _check_sockaddr(allow: Allowlist, sock: object, address: object, kind: str) -> Refusal | None:
    family = getattr(sock, "family", None)
    if family in _LOCAL_FAMILIES:
        return None
    if family in _INET_FAMILIES and isinstance(address, tuple) and len(address) >= 2:
        host = _hostname_arg(address[0]) or ""
        refusal = allow.check_connect(host, _port(address[1]))
        if refusal is not None and kind == "send":
            return Refusal(
                "send", refusal.destination, refusal.message.replace("connection to", "datagram to")
            )
        return refusal
    dest = repr(address)
    return Refusal(kind, dest, f"egress refused: socket family {family!r} to {dest} is not allowed")


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _SOCKET_EVENTS:
        return
    allow = _STATE.allow
    if allow is None:
        return
    refusal: Refusal | None
    if event == "socket.connect":
        refusal = _check_sockaddr(allow, args[0], args[1], "connect")
    elif event == "socket.getaddrinfo":
        refusal = allow.check_resolve(_hostname_arg(args[0]), _port(args[1]))
    elif event == "socket.gethostbyname":
        refusal = allow.check_resolve(_hostname_arg(args[0]), None)
    elif event == "socket.gethostbyaddr":
        name = _hostname_arg(args[0]) or ""  # a reverse lookup of an address is a DNS query too
        if _ip(name) is not None:
            refusal = allow.check_connect(name, None)
        else:
            refusal = allow.check_resolve(name, None)
    else:  # sendto / sendmsg; sendmsg on a connected socket has address None
        if args[1] is None:
            return
        refusal = _check_sockaddr(allow, args[0], args[1], "send")
    if refusal is not None:
        _refuse(refusal)


_real_getaddrinfo = socket.getaddrinfo


def _recording_getaddrinfo(
    host: bytes | str | None, port: bytes | str | int | None, *args: Any, **kwargs: Any
) -> list[tuple[Any, ...]]:
    allow = _STATE.allow
    name = _hostname_arg(host)
    if allow is not None and name and _is_localhost_name(name) and name.lower().rstrip(".") not in allow.local:
        # RFC 6761: localhost names are loopback; answer here so the resolver never asks DNS for them
        host = name = "localhost" if "localhost" in allow.local else "127.0.0.1"
    results = _real_getaddrinfo(host, port, *args, **kwargs)
    if allow is not None and name:
        allow.learn(name, results)
    return results


def install_guard(allow: Allowlist, on_refused: Callable[[Refusal], None] | None = None) -> None:
    """Install (or re-point) the process-wide guard. Idempotent: the hook is added once.

    Audit hooks cannot be removed; the hook consults a module-level state, so calling this again
    swaps the allow-list and callback, and :func:`reset_guard` makes the hook a no-op.
    """
    with _INSTALL_LOCK:
        own = socket.gethostname().lower()
        if own in allow.local:  # the own name only where the hosts file answers it (no DNS query)
            allow.extra_hosts = allow.extra_hosts | {own}
        _STATE.allow = allow
        _STATE.on_refused = on_refused
        if not _STATE.wrapped_getaddrinfo:
            socket.getaddrinfo = _recording_getaddrinfo
            _STATE.wrapped_getaddrinfo = True
        if not _STATE.hook_added:
            sys.addaudithook(_audit_hook)
            _STATE.hook_added = True


def reset_guard() -> None:
    """Make the (permanent) hook let everything through again. For tests only."""
    with _INSTALL_LOCK:
        _STATE.allow = None
        _STATE.on_refused = None


@contextmanager
def guard_scope() -> Iterator[None]:
    """Restore the guard's allow-list and callback on exit (tests that run guarded code in-process)."""
    saved = (_STATE.allow, _STATE.on_refused)
    try:
        yield
    finally:
        with _INSTALL_LOCK:
            _STATE.allow, _STATE.on_refused = saved


def guard_active() -> bool:
    return _STATE.hook_added and _STATE.allow is not None


def current_allowlist() -> Allowlist | None:
    return _STATE.allow


def startup_guard(settings: Settings, audit_log: AuditLog | None = None) -> Allowlist | None:
    """The first call of every process: offline env, then the guard (unless ``egress.guard`` is off).

    Refused attempts are written to ``audit_log`` as ``egress.refused`` events.
    """
    force_offline_env()
    if not settings.egress.guard:
        print("vraagbaak: WARNING egress.guard is off; outbound connections are not checked", file=sys.stderr)
        return None
    allow = Allowlist.from_settings(settings)
    callback: Callable[[Refusal], None] | None = None
    if audit_log is not None:
        log = audit_log

        def callback(refusal: Refusal) -> None:
            log.egress_refused(refusal.destination, refusal.message, kind=refusal.kind)

    install_guard(allow, callback)
    return allow


# --- live self-test, run in a fresh process by `vraagbaak audit egress` ---

PUBLIC_PROBES: tuple[tuple[str, int], ...] = (("192.0.2.1", 443), ("1.1.1.1", 443))
PUBLIC_NAME_PROBE = "example.org"


def self_test(audit_log: AuditLog | None = None) -> dict[str, Any]:
    """Probe the installed guard: public connects, a public name and a UDP datagram must be refused
    before any system call; a loopback connection must work. Returns a JSON-able report."""
    checks: list[dict[str, Any]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    add("guard installed", guard_active(), "audit hook present and armed" if guard_active() else "no guard")
    for host, port in PUBLIC_PROBES:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect((host, port))
        except EgressRefused as err:
            try:
                sock.getpeername()
                add(f"connect {host}:{port} refused", False, "refused, but the socket is connected")
            except OSError:
                add(f"connect {host}:{port} refused", True, f"{err} (socket never connected)")
        except OSError as err:
            add(f"connect {host}:{port} refused", False, f"reached the network stack: {err}")
        else:
            add(f"connect {host}:{port} refused", False, "CONNECTED to a public address")
        finally:
            sock.close()
    try:
        socket.getaddrinfo(PUBLIC_NAME_PROBE, 443)
    except EgressRefused as err:
        add(f"resolve {PUBLIC_NAME_PROBE} refused", True, str(err))
    except OSError as err:
        add(f"resolve {PUBLIC_NAME_PROBE} refused", False, f"a DNS query was attempted: {err}")
    else:
        add(f"resolve {PUBLIC_NAME_PROBE} refused", False, "RESOLVED a public name")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.sendto(b"\0", ("192.0.2.1", 53))
    except EgressRefused as err:
        add("udp 192.0.2.1:53 refused", True, str(err))
    except OSError as err:
        add("udp 192.0.2.1:53 refused", False, f"reached the network stack: {err}")
    else:
        add("udp 192.0.2.1:53 refused", False, "SENT a datagram to a public address")
    finally:
        udp.close()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0):
                add("loopback allowed", True, f"connected to 127.0.0.1:{port}")
        except OSError as err:
            add("loopback allowed", False, str(err))
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def _self_test_main(argv: list[str]) -> int:
    """``python -m vraagbaak_core.egress self-test [CONFIG]``: the same start-up path as every process."""
    import json

    force_offline_env()
    from vraagbaak_core.settings import load_settings

    settings = load_settings(argv[1] if len(argv) > 1 else None)
    log = build_audit_log(settings)
    before = log.count_events("egress.refused")
    startup_guard(settings, log)
    report = self_test()
    after = log.count_events("egress.refused")
    report["env"] = {k: os.environ.get(k) for k in OFFLINE_ENV}
    report["audited_refusals"] = after - before
    report["allowlist"] = _STATE.allow.describe() if _STATE.allow else None
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "self-test":
        raise SystemExit(_self_test_main(sys.argv[1:]))
    print("usage: python -m vraagbaak_core.egress self-test [CONFIG]", file=sys.stderr)
    raise SystemExit(2)
