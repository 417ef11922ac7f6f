"""The audit sink factory: the configured sink (file or PostgreSQL) and the optional syslog forwarder.

In a module of its own so that neither sink module imports the other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vraagbaak_core.audit import AuditLog, FileAuditSink, Sealer

if TYPE_CHECKING:
    from vraagbaak_core.ports import AuditSink
    from vraagbaak_core.settings import Settings


def build_audit_sink(settings: Settings) -> AuditSink:
    """The configured sink: ``file`` (default) or ``postgresql`` (one chain for every replica)."""
    a = settings.audit
    if a.backend == "postgresql":
        from vraagbaak_core.audit_pg import PostgresAuditSink

        if a.dsn is None:
            raise ValueError("audit.backend is 'postgresql' but audit.dsn is not set")
        return PostgresAuditSink(a.dsn.get_secret_value(), table=a.table, timeouts=a.timeouts())
    return FileAuditSink(settings.resolve(a.path), min_free_bytes=a.min_free_bytes)


def build_forwarder(settings: Settings) -> Callable[[Mapping[str, Any]], None] | None:
    """The optional syslog forwarder (RFC 5424) for a second copy of each record."""
    if settings.audit.syslog.host is None:
        return None
    from vraagbaak_core.audit_syslog import SyslogForwarder

    return SyslogForwarder.from_settings(settings)


def build_audit_log(settings: Settings) -> AuditLog:
    """The audit log the settings configure: its sink, source id, sealer and optional forwarder."""
    return AuditLog(
        sink=build_audit_sink(settings),
        source_id=settings.audit.source_id,
        store_question_text=settings.audit.question_text != "none",
        sealer=Sealer.from_settings(settings),
        forward=build_forwarder(settings),
    )
