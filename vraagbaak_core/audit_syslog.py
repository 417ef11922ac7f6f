"""A second copy of every audit record to the institution's own syslog/SIEM host (RFC 5424).

Each record becomes one RFC 5424 message: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG``
with MSGID the event type, a structured-data element ``[vraagbaak@32473 event_id=".." sha256=".."
prev_sha256=".."]`` that lets the SIEM check the copy against the chain, and the record's JSON as MSG
(UTF-8, with a BOM as RFC 5424 asks). Over TCP, messages are framed by octet counting (RFC 6587 §3.4.1).

The forward is a second copy, never the record of truth: a failure is logged and counted, and it never
fails the request (the primary sink does that). The format is small enough to write here; the one
PyPI handler for it (``rfc5424-logging-handler``) has not been released since 2019.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vraagbaak_core.settings import Settings

log = logging.getLogger(__name__)
PEN = 32473  # IANA "example" enterprise number (RFC 5612), for the structured-data id
BOM = "\ufeff"


def _sd_value(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _field(v: str | None, limit: int) -> str:
    v = "".join(ch for ch in (v or "") if 33 <= ord(ch) <= 126)[:limit]
    return v or "-"


def format_rfc5424(
    record: Mapping[str, Any], *, facility: int = 13, app_name: str = "vraagbaak", hostname: str | None = None
) -> bytes:
    severity = 4 if record.get("outcome") in ("failure", "refused") else 6  # warning / informational
    pri = facility * 8 + severity
    sd = (
        f'[vraagbaak@{PEN} event_id="{_sd_value(record.get("event_id"))}" '
        f'sha256="{_sd_value(record.get("sha256"))}" prev_sha256="{_sd_value(record.get("prev_sha256"))}"]'
    )
    header = " ".join((
        f"<{pri}>1",
        _field(str(record.get("timestamp") or ""), 64),
        _field(hostname or socket.gethostname(), 255),
        _field(app_name, 48),
        _field(str(os.getpid()), 128),
        _field(str(record.get("event_type") or ""), 32),
        sd,
    ))
    msg = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return f"{header} {BOM}{msg}".encode()


class SyslogForwarder:
    def __init__(
        self, host: str, port: int = 514, transport: str = "tcp", *, facility: int = 13,
        app_name: str = "vraagbaak", timeout_s: float = 2.0,
    ) -> None:
        self.host, self.port, self.transport = host, port, transport
        self.facility, self.app_name, self.timeout_s = facility, app_name, timeout_s
        self.failures = 0
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SyslogForwarder:
        s = settings.audit.syslog
        assert s.host is not None
        return cls(s.host, s.port, s.transport, facility=s.facility, app_name=s.app_name, timeout_s=s.timeout_s)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            if self.transport == "udp":
                infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)
                fam, kind, proto, _c, addr = infos[0]
                sock = socket.socket(fam, kind, proto)
                sock.connect(addr)
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.settimeout(self.timeout_s)
            self._sock = sock
        return self._sock

    def __call__(self, record: Mapping[str, Any]) -> None:
        data = format_rfc5424(record, facility=self.facility, app_name=self.app_name)
        if self.transport == "tcp":
            data = str(len(data)).encode() + b" " + data
        with self._lock:
            for attempt in (0, 1):  # one reconnect: a SIEM restart closes the old connection
                try:
                    self._connect().sendall(data)
                    return
                except OSError as err:
                    self.close_locked()
                    if attempt == 1:
                        self.failures += 1
                        log.error("audit syslog forward to %s:%s failed: %s", self.host, self.port, err)

    def close_locked(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()
