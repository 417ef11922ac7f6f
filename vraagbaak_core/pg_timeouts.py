"""Statement and lock timeouts for every PostgreSQL connection (catalog, quarantine, feedback, audit sink).

A statement that waits on a lock another session holds, or runs too long, is cancelled by the server
after the configured time instead of hanging the request: the adapters turn that into their
"unavailable" error (the API answers 503 with Retry-After).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_STATEMENT_MS = 15_000
DEFAULT_LOCK_MS = 5_000


@dataclass(frozen=True)
class PgTimeouts:
    statement_ms: int = DEFAULT_STATEMENT_MS
    lock_ms: int = DEFAULT_LOCK_MS

    def __post_init__(self) -> None:
        if self.statement_ms <= 0 or self.lock_ms <= 0:
            raise ValueError("PostgreSQL statement and lock timeouts must be positive (0 would wait forever)")

    @property
    def options(self) -> str:
        """libpq ``options``: session settings sent with the connection (no extra round trip)."""
        return f"-c statement_timeout={self.statement_ms} -c lock_timeout={self.lock_ms}"

    def describe(self) -> str:
        return f"statement_timeout {self.statement_ms} ms, lock_timeout {self.lock_ms} ms"


def timed_out(err: BaseException) -> bool:
    """Did the server cancel the statement for a timeout (SQLSTATE 57014 or 55P03)?"""
    return getattr(err, "sqlstate", None) in ("57014", "55P03")
