"""Per-key ingest quota: a token bucket that every submitted event draws one token from (B14).

The bucket lives in the process, so with N ingest replicas behind a balancer a key can get up to N
times its rate; a shared store is needed if that ever matters more than the extra hop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.api_errors import ApiError


class IngestQuota(BaseSettings):
    """Quota per API key. Env: CEM_INGEST_QUOTA_RATE_PER_S, CEM_INGEST_QUOTA_BURST.

    Keep the burst at least `max_batch_events`, or a full batch can never pass.
    """

    model_config = SettingsConfigDict(env_prefix="CEM_INGEST_", extra="ignore")

    quota_rate_per_s: float = Field(default=5_000.0, gt=0)
    quota_burst: int = Field(default=50_000, ge=1)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class QuotaLimiter:
    """Token buckets by key: `burst` tokens at most, refilled at `rate_per_s`. Thread-safe."""

    def __init__(
        self, rate_per_s: float, burst: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a quota needs a positive rate and a burst of at least 1")
        self.rate_per_s, self.burst, self._now = rate_per_s, burst, now
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: IngestQuota) -> QuotaLimiter:
        return cls(settings.quota_rate_per_s, settings.quota_burst)

    def take(self, key: str, cost: int) -> float:
        """Draw `cost` tokens: 0.0 when granted, else the seconds until they will be there.

        A refused request draws nothing, so a client that waits as told is then let through.
        """
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate_per_s

    def _refilled(self, key: str) -> _Bucket:
        # The monotonic clock, not the wall clock: a clock step must not refill or drain a bucket.
        now = self._now()
        bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
        bucket.updated = now
        return bucket

    def charge(self, key: str, cost: int) -> None:
        """Draw `cost` tokens for a request, else a 429 with Retry-After (or a 413 when the request
        is larger than the burst, since waiting would never help)."""
        if cost > self.burst:
            raise ApiError(
                413,
                "exceeds_quota_burst",
                f"{cost} events exceed this key's burst of {self.burst}; send smaller batches",
            )
        wait = self.take(key, cost)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"over this key's quota of {self.rate_per_s:g} events/s; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )


def limiter_of(app: FastAPI) -> QuotaLimiter:
    """The app's limiter (`app.state.ingest_quota`), made from CEM_INGEST_* settings on first use
    when the composition root did not set one."""
    limiter: QuotaLimiter | None = getattr(app.state, "ingest_quota", None)
    if limiter is None:
        limiter = QuotaLimiter.from_settings(IngestQuota())
        app.state.ingest_quota = limiter
    return limiter
