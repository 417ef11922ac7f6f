"""Failed authentication, bounded: a per-address rate limit first, then one aggregated audit record
per client address per interval (with the count), so a flood of bad credentials cannot fill the disk.

A failure from an address opens a window of ``audit.auth_failure_interval_s``; every further failure
from that address inside the window only counts. When the window has passed, one ``auth.failure``
record is written with ``count``, ``window_start``, ``window_end`` and the distinct reasons (at most a
few). Windows are flushed by the next failure from anyone, by :meth:`flush_due` (the app calls it
periodically) and at shutdown. Beyond ``max_addresses`` tracked addresses, further addresses share one
``"*"`` bucket, so spoofed or rotating sources cannot grow memory or records without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from vraagbaak_core.audit import AuditLog, utc_timestamp

log = logging.getLogger(__name__)
MAX_REASONS = 5
OVERFLOW = "*"


@dataclass
class _Window:
    opened: float  # monotonic
    first_at: str
    last_at: str
    count: int = 0
    rate_limited: int = 0
    reasons: list[str] = field(default_factory=list)
    user_ids: set[str] = field(default_factory=set)


class AuthFailureAudit:
    def __init__(
        self, audit: AuditLog, interval_s: float = 60.0, per_minute: int = 30, max_addresses: int = 10_000
    ) -> None:
        self.audit = audit
        self.interval_s = interval_s
        self.max_addresses = max_addresses
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str) -> bool:
        """Whether ``address`` has used up its failures for now (the caller answers 429, unauthenticated)."""
        if self._limiter.test(self._item, address):
            return False
        self._count(address, None, None, rate_limited=True)
        return True

    def failed(self, address: str, reason: str, user_id: str | None = None) -> None:
        """Count one failure (and spend one of the address's allowed failures)."""
        self._limiter.hit(self._item, address)
        self._count(address, reason, user_id, rate_limited=False)

    def refused(self, address: str, reason: str, user_id: str) -> None:
        """A known caller lacking a role (already rate-limited per user): a record of its own."""
        self.audit.auth_failure(reason=reason, network_access_point=address, user_id=user_id)

    def _count(self, address: str, reason: str | None, user_id: str | None, rate_limited: bool) -> None:
        self.flush_due()  # a passed window is written before this failure opens the next one
        now = time.monotonic()
        stamp = utc_timestamp()
        with self._lock:
            key = address
            if key not in self._windows and len(self._windows) >= self.max_addresses:
                key = OVERFLOW
            w = self._windows.get(key)
            if w is None:
                w = self._windows[key] = _Window(opened=now, first_at=stamp, last_at=stamp)
            w.last_at = stamp
            if rate_limited:
                w.rate_limited += 1
            else:
                w.count += 1
                if reason is not None and reason not in w.reasons and len(w.reasons) < MAX_REASONS:
                    w.reasons.append(reason)
                if user_id is not None and len(w.user_ids) < MAX_REASONS:
                    w.user_ids.add(user_id)

    def flush_due(self, now: float | None = None) -> int:
        """Write the records of every window that has passed; returns how many were written."""
        t = time.monotonic() if now is None else now
        with self._lock:
            due = [(a, w) for a, w in self._windows.items() if t - w.opened >= self.interval_s]
            for a, _w in due:
                del self._windows[a]
        for address, w in due:
            self._write(address, w)
        return len(due)

    def flush_all(self) -> int:
        with self._lock:
            due = list(self._windows.items())
            self._windows.clear()
        for address, w in due:
            self._write(address, w)
        return len(due)

    def _write(self, address: str, w: _Window) -> None:
        total = w.count + w.rate_limited
        reason = "; ".join(w.reasons) or "rate limited"
        if w.rate_limited:
            reason += f" (+{w.rate_limited} refused unchecked by the per-address limit)"
        try:
            self.audit.auth_failure(
                reason=reason,
                network_access_point=None if address == OVERFLOW else address,
                user_id=",".join(sorted(w.user_ids)) or None,
                count=total,
                window_start=w.first_at,
                window_end=w.last_at,
            )
        except OSError as err:  # the requests were refused anyway; say so loudly
            log.error("could not write the auth.failure record for %s (%d failures): %s", address, total, err)

    @property
    def open_windows(self) -> int:
        with self._lock:
            return len(self._windows)
