"""Request limits: a bounded generation queue (503 when full) and a per-user rate limit (429)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from serving.http.errors import ApiError


class ConcurrencyGate:
    """At most ``max_concurrent`` generations run; at most ``max_queue`` wait. Never an unbounded queue."""

    def __init__(self, max_concurrent: int, max_queue: int, retry_after: int = 2) -> None:
        self._sem = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.in_flight = 0  # running + waiting

    @property
    def full(self) -> bool:
        """No room to run or wait: :meth:`acquire` would answer 503."""
        return self.in_flight >= self.max_concurrent + self.max_queue

    async def acquire(self) -> None:
        if self.full:
            raise ApiError(
                503, "the model is busy; try again shortly", "service_unavailable", "queue_full",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.in_flight += 1
        try:
            await self._sem.acquire()
        except BaseException:
            self.in_flight -= 1
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._sem.release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


class RateLimiter:
    """Per-user moving-window limit (per API replica; see README for the cluster-wide picture)."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, user_id: str) -> None:
        if not self._limiter.hit(self._item, user_id):
            reset, _remaining = self._limiter.get_window_stats(self._item, user_id)
            retry = max(1, math.ceil(reset - time.time()))
            raise ApiError(
                429, "too many requests; slow down", "rate_limit_exceeded", "rate_limited",
                headers={"Retry-After": str(retry)},
            )
