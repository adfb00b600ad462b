"""How the ingest's writes to the event log are going, for `/ready`.

A log that still answers a read (its end offsets) may refuse every write: a SQLite file locked by
another process, or made read-only; a broker that accepts connections but not records. Reads then
say "ok" while every `POST` answers 503 (found by a review). `WatchedPublisher` wraps the publisher
the ingest writes through and remembers its writes: `check` raises while one has waited longer
than the ingest waits for an acknowledgement, or while the latest write failed, recently, with no
write succeeding since. A failure is remembered for `FAILURE_MEMORY_S` only: a replica taken out of
rotation gets no writes to prove it recovered, so it must not stay unready for ever.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kernel.ports import LogUnavailable, Outgoing, Publisher, PublishStatus

FAILURE_MEMORY_S = 30.0


class WatchedPublisher:
    """`inner`, remembering how its writes went (thread-safe: the ingest publishes from a pool)."""

    def __init__(
        self,
        inner: Publisher,
        stuck_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner, self.stuck_after_s, self.clock = inner, stuck_after_s, clock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._started: dict[int, float] = {}
        self._succeeded_at: float | None = None
        self._failed: tuple[float, str] | None = None

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        write = next(self._ids)
        with self._lock:
            self._started[write] = self.clock()
        try:
            statuses = self.inner.publish(events)
        except Exception as exc:
            with self._lock:
                self._failed = (self.clock(), f"{type(exc).__name__}: {exc}"[:300])
            raise
        else:
            with self._lock:
                self._succeeded_at = self.clock()
            return statuses
        finally:
            with self._lock:
                self._started.pop(write, None)

    def check(self) -> None:
        """Raises LogUnavailable, naming why, while writes are not getting through."""
        now = self.clock()
        with self._lock:
            oldest = min(self._started.values(), default=None)
            failed, succeeded = self._failed, self._succeeded_at
        if oldest is not None and now - oldest > self.stuck_after_s:
            raise LogUnavailable(f"a write has waited {now - oldest:.0f} s for the event log")
        recent = failed is not None and now - failed[0] <= FAILURE_MEMORY_S
        if failed is not None and recent and (succeeded is None or succeeded < failed[0]):
            ago = now - failed[0]
            raise LogUnavailable(f"the latest write failed {ago:.0f} s ago: {failed[1]}")

    def __getattr__(self, name: str) -> Any:
        # What the wrapped publisher offers besides `publish` (closing, its log) stays reachable.
        return getattr(self.inner, name)
